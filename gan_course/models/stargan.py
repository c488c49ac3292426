"""StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation (Choi, Choi, Kim,
Ha, Kim & Choo, 2018, arXiv 1711.09020).

pix2pix (chapter 05) and CycleGAN learn one generator per *pair* of domains: k domains need k(k-1) of them. StarGAN
trains ONE generator G(x, c) that translates an image x into any target domain c, given as a label vector that is
tiled over the image and concatenated to it as extra input channels (Sec. 3.1, Fig. 3). One discriminator with two
heads on a shared body judges realism, D_src(x), and classifies the domain, D_cls(c|x). The objectives (Sec. 3.1),
with c the *target* domain and c' the *original* one:

    L_adv    = E_x[log D_src(x)] + E_{x,c}[log(1 - D_src(G(x, c)))]                                 (Eq. 1)
    L_cls^r  = E_{x,c'}[-log D_cls(c'|x)]            D learns to classify REAL images               (Eq. 2)
    L_cls^f  = E_{x,c}[-log D_cls(c|G(x, c))]        G learns to make images of the TARGET domain  (Eq. 3)
    L_rec    = E_{x,c,c'}[ ||x - G(G(x, c), c')||_1 ]   translate there and back: keep the content  (Eq. 4)
    L_D = -L_adv + lambda_cls L_cls^r,   L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec           (Eq. 5)

with lambda_cls = 1 and lambda_rec = 10. For training, L_adv is replaced by the Wasserstein loss with gradient
penalty (Sec. 4, Eq. 8; Gulrajani et al. 2017, chapter 06):

    L_adv = E_x[D_src(x)] - E_{x,c}[D_src(G(x, c))] - lambda_gp E_{x_hat}[(||grad D_src(x_hat)||_2 - 1)^2]     (Eq. 8)

lambda_gp = 10, n_critic = 5 (one G update per five D updates), Adam(lr 1e-4, beta_1 0.5, beta_2 0.999). On CelebA
the attributes are not mutually exclusive, so -log D_cls(c|x) is the binary cross-entropy summed over the
attributes (the authors' code); the target labels c of a batch are its own labels shuffled (so every c is a
combination that occurs in the data).

**The mask vector (Sec. 3.2).** To train on several datasets whose label sets differ (CelebA: hair colour, gender,
age; RaFD: facial expressions), every image's label is written in one unified vector

    c_tilde = [c_1, ..., c_n, m]                                                                    (Eq. 7)

where c_i is dataset i's label vector (zeros for the datasets the image is not from) and m is a one-hot "mask"
saying which dataset's labels are known. G sees c_tilde; D_cls outputs the labels of every dataset, and the
classification losses use only the known part (``MaskVector``). The mask teaches G to ignore the zeroed parts.

The networks (Appendix, Tables 4 and 5), at the course's 32x32 grey glyphs and narrower:

- ``Generator``: down-sampling (7x7 conv, two 4x4 stride-2 convs), a residual bottleneck (6 blocks in the paper),
  up-sampling (two 4x4 stride-2 transposed convs, a 7x7 conv, tanh); instance normalisation *with affine
  parameters* after every convolution but the last, ReLU.
- ``Discriminator``: a PatchGAN body of 4x4 stride-2 convolutions with LeakyReLU(0.01) and NO normalisation (the
  gradient penalty is per sample, so batch statistics must not mix samples), then two heads: D_src, a 3x3 conv to
  one channel (a real/fake map of patches), and D_cls, a conv whose kernel covers the whole last feature map (one
  logit per domain label).

What differs from the paper, said in the chapter: 32x32 grey images rather than 128x128 RGB (so 3 rather than 6
stride-2 layers in D), conv_dim 32 rather than 64, 3 residual blocks rather than 6, no learning-rate decay,
instance norm without running statistics (the same normalisation at training and test time), and three
options the chapter switches on, each measured against the paper's choice in its Section 5:

- an identity skip around G (``Generator(residual=True)``: G(x, c) = clip(x + r(x, c), -1, 1), r = 0 at the
  start), to make the most of a few hundred generator updates;
- nearest-neighbour up-sampling followed by a 3x3 conv in G (``Generator(upsample="nearest")``) instead of
  transposed convolutions, which print a checkerboard (Odena, Dumoulin & Olah, Distill 2016);
- a random translation of every image D sees (``Discriminator(translation=0.125)``, DiffAugment's, Zhao et al.
  2020), because with the paper's networks at this size G learns to fool D_cls with a blotch at a fixed place
  (``gan_course.lab.stargan.evaluate(..., D=D)`` measures D_cls's reading beside an independent classifier's).

``Config`` holds the paper's hyper-parameters and these three options (defaults: the paper's values), ``optimizers``
the Adam pair, ``DomainBatches`` the batches StarGAN trains on (x, its labels c', targets c = c' shuffled; with a
mask vector, alternating between datasets), and ``train_step(run, G, D, batches, cfg)`` the one update the chapter
runs: its main loop, every "what goes wrong" arm and the mask-vector run. What the chapter measures with the
networks (the glyph domains, the independent attribute classifier, evaluation, figures, explorers) is in
``gan_course.lab.stargan``.
"""


from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.glyphs import BINARY_ATTRIBUTES
from ..layers import diff_augment
from ..losses import gradient_penalty, wasserstein_critic_loss, wasserstein_generator_loss
from ..training import set_requires_grad

LAMBDA_CLS = 1.0            # Sec. 3.1: "We use lambda_cls = 1 and lambda_rec = 10 in all of our experiments" (Eq. 5)
LAMBDA_REC = 10.0
LAMBDA_GP = 10.0            # Sec. 4 (Eq. 8): "We use lambda_gp = 10 for all experiments"
N_CRITIC = 5                # Sec. 4.1: "We perform one generator update after five discriminator updates"
LR, BETAS = 1e-4, (0.5, 0.999)   # Sec. 4.1: Adam "with beta_1 = 0.5 and beta_2 = 0.999", "a learning rate of 0.0001"
LEAK = 0.01                 # the discriminator's LeakyReLU slope (Table 5)

STYLE_ATTRIBUTES = BINARY_ATTRIBUTES   # the glyph domains' two binary attributes (data.glyphs.attribute_vector)
UPSAMPLING = ("transposed", "nearest")   # G's up-sampling: the paper's transposed convs, or resize + conv


# ============================================================================ domain labels
def domain_names(families: Sequence[str]) -> list[str]:
    """The label vector's entries for glyph domains: ``["bold", "italic", *families]``."""
    return [*STYLE_ATTRIBUTES, *families]


def all_domains(families: Sequence[str]) -> torch.Tensor:
    """Every valid domain label: bold x italic x family, (4 * len(families), 2 + len(families)), family-major."""
    rows = []
    for f, bold, italic in itertools.product(range(len(families)), (0, 1), (0, 1)):
        family = [0.0] * len(families)
        family[f] = 1.0
        rows.append([float(bold), float(italic), *family])
    return torch.tensor(rows)


def shuffled_labels(c_prime: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The target labels c of a batch: its original labels c' in a random order (the authors' code).

    Every c is then a label that occurs in the data (one family, never two), as on CelebA.
    """
    perm = torch.randperm(len(c_prime), generator=generator, device="cpu" if generator is not None else None)
    return c_prime[perm.to(c_prime.device)]


# ============================================================================ the generator (Sec. 3.1, Table 4)
def tile_labels(c: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, n) domain labels -> (B, n, H, W): each label value repeated over every pixel ("spatially replicated").

    The generator sees the target domain at every position of the image (Fig. 3 (b))."""
    return c[:, :, None, None].expand(-1, -1, height, width)


def concat_labels(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """G's input: the image x (B, C, H, W) and its tiled target label, (B, C + n, H, W)."""
    return torch.cat([x, tile_labels(c.to(x.dtype), x.shape[-2], x.shape[-1])], dim=1)


class ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))): the bottleneck's residual block (Table 4), width preserved."""

    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): one translator for every domain (Table 4 of the paper).

    Input: the image with the target label tiled to H x W and concatenated, C + c_dim channels. Down-sampling:
    conv 7x7 (conv_dim), conv 4x4 stride 2 (2 conv_dim), conv 4x4 stride 2 (4 conv_dim); ``repeat_num`` residual
    blocks at H/4 x W/4; up-sampling: two transposed convs 4x4 stride 2 back to conv_dim; a 7x7 conv to C channels
    and tanh. Instance normalisation with affine parameters and ReLU after every conv but the last. The paper:
    conv_dim = 64, repeat_num = 6 at 128x128.

    ``residual=True`` (not in the paper; the "residual image" of Shen & Liu, 2017, arXiv 1612.05363) makes the
    network predict a change r(x, c) instead of the image: G(x, c) = clip(x + r(x, c), -1, 1), with the last conv
    initialised to zero, so that G starts as the identity. The course uses it because a CPU affords ~1% of the
    paper's generator updates: the paper's G first has to learn to reproduce a glyph at all.

    ``upsample="nearest"`` (not in the paper) replaces each transposed conv by a nearest-neighbour resize and a 3x3
    conv: in a transposed conv with stride 2, output pixels of each parity (even/odd row and column) are made by a
    different quarter of the kernel, so a checkerboard is easy to learn and has to be unlearned (Odena, Dumoulin &
    Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016); resizing first treats every pixel alike.
    """

    def __init__(self, *, c_dim: int, channels: int = 1, conv_dim: int = 32, repeat_num: int = 3,
                 residual: bool = False, upsample: str = "transposed"):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        self.c_dim, self.channels, self.residual, self.upsample = c_dim, channels, residual, upsample

        def conv_in_relu(conv: nn.Module, c_out: int) -> list[nn.Module]:
            return [conv, nn.InstanceNorm2d(c_out, affine=True), nn.ReLU()]

        d = conv_dim
        layers = conv_in_relu(nn.Conv2d(channels + c_dim, d, 7, 1, 3, bias=False), d)            # down-sampling
        for _ in range(2):
            layers += conv_in_relu(nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), 2 * d)
            d *= 2
        layers += [ResidualBlock(d) for _ in range(repeat_num)]                                   # bottleneck
        for _ in range(2):                                                                        # up-sampling
            if upsample == "transposed":                                          # the paper
                up = nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False)
            else:                                                                   # Odena et al. (2016)
                up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                   nn.Conv2d(d, d // 2, 3, 1, 1, bias=False))
            layers += conv_in_relu(up, d // 2)
            d //= 2
        layers.append(nn.Conv2d(d, channels, 7, 1, 3, bias=False))
        if residual:
            nn.init.zeros_(layers[-1].weight)                                   # r = 0: G starts as the identity
        else:
            layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, target_labels: torch.Tensor) -> torch.Tensor:
        """G(x, c): x (B, C, H, W) in [-1, 1] and the target labels c (B, c_dim) -> an image (B, C, H, W)."""
        if target_labels.shape != (x.shape[0], self.c_dim):
            raise ValueError(f"target_labels must have shape ({x.shape[0]}, {self.c_dim}), "
                             f"got {tuple(target_labels.shape)}")
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by 4 (two stride-2 layers)")
        out = self.main(concat_labels(x, target_labels))
        return (x + out).clamp(-1, 1) if self.residual else out


# ============================================================================ the discriminator (Table 5)
class Discriminator(nn.Module):
    """D(x) = (D_src(x), D_cls(x)): a PatchGAN body with two heads, no normalisation (Table 5).

    Body: ``repeat_num`` convs 4x4 stride 2 with LeakyReLU(0.01), widths conv_dim, 2 conv_dim, ... (6 layers up to
    2048 channels in the paper at 128x128; 3 here at 32x32, leaving a 4x4 map). D_src: conv 3x3 stride 1 to one
    channel, a map of real/fake scores, one per patch (a Wasserstein critic: no sigmoid). D_cls: a conv whose
    kernel is the whole last map, one logit per domain label (``c_dim``).

    ``translation > 0`` (not in the paper; DiffAugment, Zhao et al. 2020, arXiv 2006.10738) shifts every image D
    sees in training, real or generated, by a random offset up to that fraction of its size, with gradients to G.
    The chapter uses it because a small D_cls is easy for G to fool with a blotch at a fixed place (Sec. 3.2).
    """

    def __init__(self, *, c_dim: int, channels: int = 1, image_size: int = 32, conv_dim: int = 32,
                 repeat_num: int = 3, translation: float = 0.0):
        super().__init__()
        if not 0 <= translation < 0.5:
            raise ValueError(f"translation must be a fraction of the image size in [0, 0.5), got {translation}")
        self.c_dim, self.translation = c_dim, translation
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for i in range(repeat_num):
            c_out = conv_dim * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(LEAK)]
            c_in, size = c_out, (size + 2 - 4) // 2 + 1
        if size < 1:
            raise ValueError(f"image_size {image_size} is too small for {repeat_num} stride-2 layers")
        self.main = nn.Sequential(*layers)
        self.conv_src = nn.Conv2d(c_in, 1, 3, 1, 1, bias=False)             # D_src: a patch map
        self.conv_cls = nn.Conv2d(c_in, c_dim, size, bias=False)             # D_cls: kernel = the whole map
        self.patch_map_size = size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(out_src, out_cls)``: real/fake scores (B, 1, h, w) and domain logits (B, c_dim)."""
        if self.training and self.translation:
            x = diff_augment(x, self.translation)         # a random shift of every input, with gradients
        h = self.main(x)
        return self.conv_src(h), self.conv_cls(h).flatten(1)


# ============================================================================ the objective (Sec. 3.1, 4)
def domain_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log D_cls(c|x) for multi-label domains (Eq. 2 and 3 on CelebA): binary cross-entropy of each label,
    summed over the labels and averaged over the batch (the authors' code).

    With D's logits on real images and their labels c' it is L_cls^r (D's loss); on G(x, c) with the target
    labels c it is L_cls^f (G's loss).
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="sum") / logits.shape[0]


def reconstruction_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """L_rec = E[||x - G(G(x, c), c')||_1] (Eq. 4): the cycle back to the original domain c', as the mean
    absolute difference per pixel (the authors' code)."""
    return (x - x_rec).abs().mean()


def discriminator_loss(D: nn.Module, x: torch.Tensor, x_fake: torch.Tensor, c_prime: torch.Tensor,
                       lambda_cls: float = LAMBDA_CLS, lambda_gp: float = LAMBDA_GP,
                       cls_loss: Callable = domain_classification_loss,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """L_D = -L_adv + lambda_cls L_cls^r (Eq. 5) with the Wasserstein L_adv and its gradient penalty (Eq. 8):

    E[D_src(G(x, c))] - E[D_src(x)] + lambda_gp E[(||grad D_src(x_hat)||_2 - 1)^2] + lambda_cls L_cls^r.

    The penalty is ``gan_course.losses.gradient_penalty`` on D_src (the patch map's scores are summed per image,
    as in the authors' code). Returns the loss and its parts (floats) for logging, with the mean critic scores
    ``D_real`` = E[D_src(x)] and ``D_fake`` = E[D_src(G(x, c))].
    """
    out_src, out_cls = D(x)
    fake_src, _ = D(x_fake.detach())
    loss_adv = wasserstein_critic_loss(out_src, fake_src)                 # -(E[D_src(x)] - E[D_src(G(x, c))])
    loss_gp = gradient_penalty(lambda h: D(h)[0], x, x_fake, lambda_gp, generator=generator)
    loss_cls_r = cls_loss(out_cls, c_prime)                               # L_cls^r (Eq. 2)
    loss = loss_adv + loss_gp + lambda_cls * loss_cls_r
    return loss, {"L_adv_D": float(loss_adv.detach()), "L_gp": float(loss_gp.detach()),
                  "L_cls_r": float(loss_cls_r.detach()), "D_real": float(out_src.detach().mean()),
                  "D_fake": float(fake_src.detach().mean())}


def generator_loss(G: nn.Module, D: nn.Module, x: torch.Tensor, c: torch.Tensor, c_prime: torch.Tensor,
                   lambda_cls: float = LAMBDA_CLS, lambda_rec: float = LAMBDA_REC,
                   cls_loss: Callable = domain_classification_loss) -> tuple[torch.Tensor, dict[str, float]]:
    """L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec (Eq. 5), G's side of the Wasserstein L_adv:

    -E[D_src(G(x, c))] + lambda_cls (-log D_cls(c|G(x, c))) + lambda_rec ||x - G(G(x, c), c')||_1.

    ``lambda_rec = 0`` or ``lambda_cls = 0`` drop a term (the chapter's ablations); a dropped reconstruction is
    not even computed. Returns the loss and its parts.
    """
    x_fake = G(x, c)
    out_src, out_cls = D(x_fake)
    loss_adv = wasserstein_generator_loss(out_src)
    loss_cls_f = cls_loss(out_cls, c)                                     # L_cls^f (Eq. 3)
    loss = loss_adv + lambda_cls * loss_cls_f
    parts = {"L_adv_G": float(loss_adv.detach()), "L_cls_f": float(loss_cls_f.detach())}
    if lambda_rec:
        loss_rec = reconstruction_loss(x, G(x_fake, c_prime))            # L_rec (Eq. 4): back to c'
        loss = loss + lambda_rec * loss_rec
        parts["L_rec"] = float(loss_rec.detach())
    return loss, parts


# ============================================================================ the mask vector (Sec. 3.2)
@dataclass(frozen=True)
class LabelSet:
    """One dataset's labels: their ``names`` and how they are classified, ``"bce"`` (independent binary
    attributes, like CelebA's) or ``"ce"`` (one-hot, exactly one true, like RaFD's expressions)."""

    name: str
    names: tuple[str, ...]
    kind: str = "bce"

    def __post_init__(self):
        if self.kind not in ("bce", "ce"):
            raise ValueError(f"kind must be 'bce' or 'ce', got {self.kind!r}")


class MaskVector:
    """The unified label c_tilde = [c_1, ..., c_n, m] of Eq. 7 for n datasets with different label sets.

    - ``encode(c, k)``: labels ``c`` (B, len(set k)) of images from dataset k -> c_tilde (B, ``dim``): c in dataset
      k's slot, zeros in every other slot ("unknown"), and m = one-hot(k). G is trained on c_tilde.
    - ``classification_loss(logits, c_tilde)``: -log D_cls(c|x) on the known labels. D_cls outputs every dataset's
      labels (``n_cls`` logits); for an image of dataset k (its mask m says k) only dataset k's part is known, so
      only it is scored: BCE summed over the labels (``"bce"``) or softmax cross-entropy (``"ce"``). It takes
      (logits, c_tilde) like ``domain_classification_loss``, so ``train_step`` uses either.
    """

    def __init__(self, label_sets: Sequence[LabelSet]):
        if len(label_sets) < 2:
            raise ValueError("a mask vector joins at least two datasets")
        self.label_sets = tuple(label_sets)
        sizes = [len(s.names) for s in self.label_sets]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.slices = [slice(a, a + n) for a, n in zip(starts, sizes, strict=True)]
        self.n_cls = sum(sizes)
        self.dim = self.n_cls + len(self.label_sets)

    def mask(self, k: int, batch: int = 1) -> torch.Tensor:
        """m = one-hot(k) over the n datasets, (batch, n)."""
        return F.one_hot(torch.full((batch,), k), len(self.label_sets)).float()

    def encode(self, c: torch.Tensor, k: int) -> torch.Tensor:
        """c_tilde = [0, ..., c (dataset k's slot), ..., 0, one-hot(k)] for a batch of dataset k's labels."""
        s = self.slices[k]
        if c.dim() != 2 or c.shape[1] != s.stop - s.start:
            raise ValueError(f"dataset {self.label_sets[k].name!r} has {s.stop - s.start} labels; got c of shape "
                             f"{tuple(c.shape)}")
        c_tilde = torch.zeros(c.shape[0], self.dim, device=c.device)
        c_tilde[:, s] = c.float()
        c_tilde[:, self.n_cls:] = self.mask(k, c.shape[0]).to(c.device)
        return c_tilde

    def known(self, c_tilde: torch.Tensor) -> list[int]:
        """Which dataset each row's labels come from: argmax of the mask m."""
        return c_tilde[:, self.n_cls:].argmax(1).tolist()

    def dataset_loss(self, k: int, logits: torch.Tensor, c_tilde: torch.Tensor) -> torch.Tensor:
        """-log D_cls(c|x) restricted to dataset k's labels, for rows that all come from dataset k."""
        s = self.slices[k]
        if self.label_sets[k].kind == "bce":
            return domain_classification_loss(logits[:, s], c_tilde[:, s])
        return F.cross_entropy(logits[:, s], c_tilde[:, s].argmax(1))

    def classification_loss(self, logits: torch.Tensor, c_tilde: torch.Tensor) -> torch.Tensor:
        """-log D_cls(c|x) on the labels the mask says are known: logits (B, n_cls), c_tilde (B, dim).

        A batch from one dataset (how ``DomainBatches`` draws them) is scored by that dataset's loss; a mixed batch
        by each dataset's loss on its rows, weighted by its share of the batch (an average over images).
        """
        known = torch.tensor(self.known(c_tilde), device=logits.device)
        present = known.unique().tolist()
        if len(present) == 1:
            return self.dataset_loss(present[0], logits, c_tilde)
        return sum(self.dataset_loss(k, logits[known == k], c_tilde[known == k]) * (known == k).float().mean()
                   for k in present)

    def names(self) -> list[str]:
        """Names of c_tilde's entries: every dataset's labels, then the mask ``m[<dataset>]``."""
        return [n for s in self.label_sets for n in s.names] + [f"m[{s.name}]" for s in self.label_sets]


# ============================================================================ training (Sec. 3.2, 4.1)
@dataclass
class Config:
    """The paper's hyper-parameters (Sec. 3.1, 4.1) and the course's three options; defaults: the paper's values.

    The chapter changes ``lr`` (4e-4 for a short run), ``g_residual``, ``g_upsample`` and ``d_translation``, and
    says why; its Section 5 measures each against the paper's value.
    """

    lambda_cls: float = LAMBDA_CLS      # Eq. 5: "We use lambda_cls = 1
    lambda_rec: float = LAMBDA_REC      #         and lambda_rec = 10 in all of our experiments"
    lambda_gp: float = LAMBDA_GP        # Eq. 8: "We use lambda_gp = 10 for all experiments"
    n_critic: int = N_CRITIC            # Sec. 4.1: "one generator update after five discriminator updates"
    lr: float = LR                      # Sec. 4.1: "a learning rate of 0.0001" (no decay in the course)
    beta1: float = BETAS[0]             # Sec. 4.1: Adam "with beta_1 = 0.5
    beta2: float = BETAS[1]             #           and beta_2 = 0.999"
    g_residual: bool = False            # not in the paper: G(x, c) = clip(x + r(x, c), -1, 1) (Generator(residual=))
    g_upsample: str = "transposed"      # the paper's transposed convs, or "nearest" (Generator(upsample=))
    d_translation: float = 0.0          # not in the paper: DiffAugment shifts of D's inputs (Discriminator(translation=))

    def __post_init__(self):
        for name in ("lambda_cls", "lambda_rec", "lambda_gp"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 drops the term), got {getattr(self, name)}")
        if isinstance(self.n_critic, bool) or not isinstance(self.n_critic, int) or self.n_critic < 1:
            raise ValueError(f"n_critic (D updates per G update) must be an int >= 1, got {self.n_critic!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must lie in [0, 1), got ({self.beta1}, {self.beta2})")
        if self.g_upsample not in UPSAMPLING:
            raise ValueError(f"g_upsample must be one of {UPSAMPLING}, got {self.g_upsample!r}")
        if not 0 <= self.d_translation < 0.5:
            raise ValueError(f"d_translation must be a fraction of the image size in [0, 0.5), got {self.d_translation}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D (Sec. 4.1), as the ``{"G": ..., "D": ...}`` a ``Run`` takes."""
    betas = (cfg.beta1, cfg.beta2)
    return {"G": torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=betas)}


class DomainBatches:
    """What StarGAN trains on: ``next()`` gives (x, c', c), real images x, their domain labels c' and the target
    labels c = c' shuffled within the batch (``shuffled_labels``, from its own generator seeded by ``seed``).

    With several ``sources`` (e.g. ``gan_course.training.Batches`` of datasets with different label sets, Sec. 3.2)
    iteration i draws from source i mod n and writes its labels with the ``mask`` vector (c' = c_tilde). Resumable
    like ``Batches``: attach it to the ``Run`` (``run.attach(batches=...)``).
    """

    def __init__(self, *sources, seed: int = 0, mask: MaskVector | None = None):
        if not sources:
            raise ValueError("DomainBatches needs at least one source of (x, c') batches")
        if len(sources) > 1 and mask is None:
            raise ValueError(f"{len(sources)} sources with different label sets need a mask vector (mask=...)")
        if mask is not None and len(sources) != len(mask.label_sets):
            raise ValueError(f"the mask vector joins {len(mask.label_sets)} datasets, got {len(sources)} sources")
        self.sources, self.mask, self.seed = sources, mask, seed
        self.generator = torch.Generator().manual_seed(seed)
        self.i = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = self.i % len(self.sources)
        self.i += 1
        x, c_prime = self.sources[k].next()
        if self.mask is not None:
            c_prime = self.mask.encode(c_prime, k)                       # c_tilde = [..., c_k, ..., m] (Eq. 7)
        return x, c_prime, shuffled_labels(c_prime, self.generator)

    __next__ = next

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        return {"i": self.i, "seed": self.seed, "generator": self.generator.get_state(),
                "sources": [s.state_dict() for s in self.sources]}

    def load_state_dict(self, state: dict):
        self.i, self.seed = state["i"], state["seed"]
        self.generator.set_state(state["generator"])
        for source, s in zip(self.sources, state["sources"], strict=True):
            source.load_state_dict(s)


def train_step(run, G: Generator, D: Discriminator, batches: DomainBatches, cfg: Config, *,
               cls_loss: Callable = domain_classification_loss) -> dict:
    """One iteration of the authors' loop (Sec. 4.1): a D step; every ``cfg.n_critic``-th iteration also a G step.

        D step:  L_D = E[D_src(G(x, c))] - E[D_src(x)] + lambda_gp GP + lambda_cls L_cls^r          (Eq. 5, 8)
        G step:  L_G = -E[D_src(G(x, c))] + lambda_cls L_cls^f + lambda_rec ||x - G(G(x, c), c')||_1 (Eq. 5)

    ``batches`` yields (x, c', c) (``DomainBatches``); the iteration count is ``run.step``. ``cls_loss`` is
    -log D_cls(c|x): the multi-label BCE, or ``MaskVector.classification_loss`` for several datasets (Sec. 3.2).
    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D". Returns the scalars to log: ``loss_D``,
    ``D_real``, ``D_fake`` and D's terms, and on G's iterations ``loss_G`` and G's terms.
    """
    x, c_prime, c = batches.next()                     # real images, their domains c', target domains c
    with torch.no_grad(), run.autocast():
        x_fake = G(x, c)
    with run.autocast():
        loss_D, parts = discriminator_loss(D, x, x_fake, c_prime, cfg.lambda_cls, cfg.lambda_gp, cls_loss)
    run.update("D", loss_D)
    logs = dict(loss_D=loss_D.detach(), **parts)
    if (run.step + 1) % cfg.n_critic == 0:
        set_requires_grad(D, False)                    # G's step leaves no gradients in D
        try:
            with run.autocast():
                loss_G, parts = generator_loss(G, D, x, c, c_prime, cfg.lambda_cls, cfg.lambda_rec, cls_loss)
            run.update("G", loss_G)
        finally:                                       # D trainable again, even after an interruption
            set_requires_grad(D, True)
        logs.update(loss_G=loss_G.detach(), **parts)
    return logs
