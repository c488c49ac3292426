"""InfoGAN (Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel, 2016, "InfoGAN: Interpretable Representation
Learning by Information Maximizing Generative Adversarial Nets", arXiv 1606.03657).

A plain GAN feeds G one noise vector and nothing forces any of its coordinates to mean anything. InfoGAN splits
G's input in two (Sec. 4): *incompressible noise* z and *latent codes* c = (c_1, ..., c_L) with a factored prior
P(c) = prod_i P(c_i), and asks that the codes stay recoverable from the image: high mutual information
I(c; G(z, c)). The game becomes (Eq. 3)

    min_G max_D V_I(D, G) = V(D, G) - lambda I(c; G(z, c)).

I(c; G(z, c)) = H(c) - H(c | G(z, c)) needs the posterior P(c | x), which is intractable. Sec. 5 replaces it by an
auxiliary distribution Q(c | x): since KL(P(.|x) || Q(.|x)) >= 0,

    I(c; G(z, c)) = H(c) + E_{x ~ G(z, c)}[ E_{c' ~ P(c|x)}[log P(c'|x)] ]
                  = H(c) + E_x[ KL(P(.|x) || Q(.|x)) + E_{c' ~ P(c|x)}[log Q(c'|x)] ]
                 >= H(c) + E_x[ E_{c' ~ P(c|x)}[log Q(c'|x)] ],

and Lemma 5.1 (the law of total expectation) removes the sample from the posterior (Eq. 5):

    L_I(G, Q) = E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] + H(c)  <=  I(c; G(z, c)),

with equality when Q is the true posterior. The final objective (Eq. 6) is

    min_{G, Q} max_D V_InfoGAN(D, G, Q) = V(D, G) - lambda L_I(G, Q).

Q is a neural network that shares all convolutional layers with D and adds one fully connected head (Sec. 6), so
the mutual-information term costs almost nothing. For a categorical code Q outputs a softmax; for a continuous
code, "simply treating Q(c_j | x) as a factored Gaussian is sufficient" (Sec. 6). lambda = 1 for discrete codes;
"when the latent code contains continuous variables, a smaller lambda is typically used to ensure that
lambda L_I(G, Q), which now involves differential entropy, is on the same scale as GAN objectives" (Sec. 6).

This module, top to bottom:

- the latent split: ``Latent`` (z ~ N(0, I), one categorical code of ``categories`` values, ``continuous`` codes
  ~ U[-1, 1]; H(c));
- the players of the paper's MNIST experiment (Appendix C.1, Table 1): ``Generator`` G(z, c) and
  ``Discriminator``, whose ``body`` is shared by the ``d_head`` (D's logit) and the ``q_head`` (Q's parameters);
- the bound: ``categorical_log_likelihood``, ``gaussian_log_likelihood``, ``mutual_information_bound`` (L_I, Eq. 5)
  and ``info_loss`` (-lambda L_I);
- training: ``Config`` (lambda, Appendix C's learning rates), ``optimizers`` and ``train_step``, one iteration of
  Eq. 6, which the notebook's loop and every experiment arm call.

Measuring what the codes mean (agreement with labels, image moments, the shapes' factors, mutual information,
MIG) and the explorers are the chapter's lab: ``gan_course.lab.infogan``.

Differences from the paper (MNIST code: github.com/openai/InfoGAN), documented in the chapter: images in [-1, 1]
so G ends in tanh; z ~ N(0, I) rather than U[-1, 1]; the widths are parameters (the paper's are the defaults) so
a CPU can train a narrower pair; Q's Gaussian learns its standard deviation (``fix_std=True`` gives the
official code's unit-variance Gaussian).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..training import set_requires_grad

LR_D = 2e-4          # Appendix C: "learning rate 2e-4 for D and 1e-3 for G" (Adam)
LR_G = 1e-3
BETA1 = 0.5          # the DCGAN recipe the paper builds on (Sec. 6)
LAMBDA_CAT = 1.0     # Sec. 6: lambda = 1 for discrete codes ...
LAMBDA_CONT = 0.1    # ... and a smaller lambda for continuous ones
LEAK = 0.1           # Table 1 only says lReLU; the official code (custom_ops.leaky_rectify) uses 0.01
MNIST_CODE_ERROR = 0.05  # Sec. 7: c1 "can be used as a classifier that achieves 5% error rate" on MNIST digits



# ============================================================================ the latent split (Sec. 4)
@dataclass(frozen=True, kw_only=True)
class Latent:
    """G's input: incompressible noise z (``z_dim``) and the latent codes c = (c_1, c_2, ..., c_{1+continuous}).

    The paper's MNIST setting (Sec. 7.1): z in R^62, c_1 ~ Cat(K = 10, p = 0.1), c_2, c_3 ~ Unif(-1, 1).
    G receives the concatenation [z, one_hot(c_1), c_2, ..., c_L] (``dim`` numbers: 74 for MNIST).
    """

    z_dim: int = 62
    categories: int = 10
    continuous: int = 2

    @property
    def dim(self) -> int:
        return self.z_dim + self.categories + self.continuous

    @property
    def q_dim(self) -> int:
        """How many numbers Q outputs: K logits for c_1, a mean and a log standard deviation per continuous code."""
        return self.categories + 2 * self.continuous

    def entropy(self) -> dict[str, float]:
        """H(c) of the prior, in nats: log K for the uniform categorical, log 2 per U[-1, 1] code (differential
        entropy of a uniform on an interval of length 2). These are the constants in L_I (Eq. 5)."""
        return {"cat": math.log(self.categories), "cont": self.continuous * math.log(2.0)}

    def sample(self, n: int, generator: torch.Generator | None = None, device=None):
        """Draw (z, c_cat, c_cont) from the prior: z ~ N(0, I), c_cat ~ Cat(K, 1/K) (int64), c_cont ~ U[-1, 1]."""
        z = torch.randn(n, self.z_dim, generator=generator)
        c_cat = torch.randint(0, self.categories, (n,), generator=generator)
        c_cont = torch.rand(n, self.continuous, generator=generator) * 2 - 1
        if device is not None:
            z, c_cat, c_cont = z.to(device), c_cat.to(device), c_cont.to(device)
        return z, c_cat, c_cont

    def join(self, z: torch.Tensor, c_cat: torch.Tensor, c_cont: torch.Tensor) -> torch.Tensor:
        """[z, one_hot(c_cat), c_cont]: the vector G actually sees."""
        return torch.cat([z, F.one_hot(c_cat.long(), self.categories).to(z.dtype), c_cont.to(z.dtype)], dim=1)



# ============================================================================ the players (Appendix C.1, Table 1)
def _side(image_size: int) -> int:
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (28 for glyphs, 32 for shapes), got {image_size}")
    return image_size // 4


class Generator(nn.Module):
    """G(z, c): the paper's MNIST generator (Table 1), for images of side ``image_size`` = 4s:

        [z, c] (dim) -> FC 1024, BN, ReLU -> FC 2w x s x s, BN, ReLU
                     -> ConvT 4x4 stride 2 -> w x 2s x 2s, BN, ReLU
                     -> ConvT 4x4 stride 2 -> C x 4s x 4s, tanh

    With w = 64 and s = 7 this is Table 1 exactly (128 x 7 x 7, then 64 channels), tanh replacing the sigmoid.
    """

    def __init__(self, *, latent: Latent = Latent(), channels: int = 1, image_size: int = 28, width: int = 64,
                 hidden: int = 1024):
        super().__init__()
        self.latent, self.channels, self.image_size, self.width, self.hidden = latent, channels, image_size, width, hidden
        s = self.side = _side(image_size)
        self.fc = nn.Sequential(
            nn.Linear(latent.dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * width * s * s, bias=False), nn.BatchNorm1d(2 * width * s * s), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, c_cat: torch.Tensor, c_cont: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.latent.join(z, c_cat, c_cont))
        return self.up(h.view(len(z), 2 * self.width, self.side, self.side))


class QOutput(NamedTuple):
    """Q(c | x): the categorical code's logits (B, K), and the Gaussian's mean and log standard deviation (B, L)."""

    cat_logits: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor


class Discriminator(nn.Module):
    """D and Q sharing one body (Sec. 6, Table 1):

        body:   x -> Conv 4x4 stride 2, w, lReLU -> Conv 4x4 stride 2, 2w, BN, lReLU -> FC 1024, BN, lReLU  = h
        d_head: h -> FC 1                                          (D's logit: D(x) = sigmoid(logit))
        q_head: h -> FC 128, BN, lReLU -> FC (K + 2 L)             (Q(c | x): K logits, L means, L log-sigmas)

    ``forward(x)`` returns ``(logit, QOutput)``, both from one pass through the body: the mutual-information term
    costs one small head. ``fix_std=True`` makes Q's Gaussian unit-variance (the official code's choice).
    """

    def __init__(self, *, latent: Latent = Latent(), channels: int = 1, image_size: int = 28, width: int = 64,
                 hidden: int = 1024, q_hidden: int = 128, fix_std: bool = False, leak: float = LEAK):
        super().__init__()
        self.latent, self.channels, self.image_size, self.width, self.hidden = latent, channels, image_size, width, hidden
        self.fix_std = fix_std
        s = _side(image_size)
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(leak),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(leak),
            nn.Flatten(),
            nn.Linear(2 * width * s * s, hidden, bias=False), nn.BatchNorm1d(hidden), nn.LeakyReLU(leak))
        self.d_head = nn.Linear(hidden, 1)
        self.q_head = nn.Sequential(nn.Linear(hidden, q_hidden, bias=False), nn.BatchNorm1d(q_hidden),
                                    nn.LeakyReLU(leak), nn.Linear(q_hidden, latent.q_dim))

    def q_from_features(self, h: torch.Tensor) -> QOutput:
        out = self.q_head(h)
        k, n = self.latent.categories, self.latent.continuous
        mu, log_sigma = out[:, k:k + n], out[:, k + n:]
        if self.fix_std:
            log_sigma = torch.zeros_like(log_sigma)
        return QOutput(out[:, :k], mu, log_sigma)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QOutput]:
        h = self.body(x)
        return self.d_head(h).view(len(x)), self.q_from_features(h)

    def q(self, x: torch.Tensor) -> QOutput:
        """Q(c | x) alone (e.g. to read the codes of real images)."""
        return self.q_from_features(self.body(x))


# ============================================================================ the variational bound (Sec. 5)
def categorical_log_likelihood(cat_logits: torch.Tensor, c_cat: torch.Tensor) -> torch.Tensor:
    """E[log Q(c_1 | x)] for the categorical code: the mean log-softmax at the true category (= -cross-entropy)."""
    return -F.cross_entropy(cat_logits, c_cat.long())


def gaussian_log_likelihood(c_cont: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """E[log Q(c_2..L | x)] for a factored Gaussian Q: the sum over codes of

        log N(c_j; mu_j, sigma_j^2) = -(c_j - mu_j)^2 / (2 sigma_j^2) - log sigma_j - log(2 pi) / 2,

    averaged over the batch.
    """
    per_code = -0.5 * ((c_cont - mu) * torch.exp(-log_sigma)) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
    return per_code.sum(dim=1).mean()


def mutual_information_bound(q: QOutput, c_cat: torch.Tensor, c_cont: torch.Tensor, latent: Latent) -> dict:
    """L_I(G, Q) = E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] + H(c) (Eq. 5), in nats, for each kind of code:

    ``{"cat": L_I for c_1 (at most log K), "cont": L_I for the continuous codes}``. Both are lower bounds on the
    mutual information between those codes and G(z, c). The H(c) constants do not change any gradient; they make
    the number readable: L_I = log K means Q recovers c_1 perfectly, 0 means not at all.
    """
    h = latent.entropy()
    return {"cat": categorical_log_likelihood(q.cat_logits, c_cat) + h["cat"],
            "cont": gaussian_log_likelihood(c_cont, q.mu, q.log_sigma) + h["cont"]}


def info_loss(q: QOutput, c_cat: torch.Tensor, c_cont: torch.Tensor, latent: Latent,
              lambda_cat: float = LAMBDA_CAT, lambda_cont: float = LAMBDA_CONT) -> torch.Tensor:
    """-lambda L_I (Eq. 6), the term G and Q minimise: -(lambda_cat L_I^cat + lambda_cont L_I^cont)."""
    L_I = mutual_information_bound(q, c_cat, c_cont, latent)
    return -(lambda_cat * L_I["cat"] + lambda_cont * L_I["cont"])



# ============================================================================ training (Sec. 6, Appendix C)
@dataclass
class Config:
    """InfoGAN's training hyper-parameters: lambda of Eq. 6 per kind of code (Sec. 6) and Adam (Appendix C).

    ``lambda_cat = lambda_cont = 0`` is a plain GAN with the same inputs (c is then just more noise).
    """

    lambda_cat: float = LAMBDA_CAT     # Sec. 6: "we simply set lambda to 1" for discrete latent codes
    lambda_cont: float = LAMBDA_CONT   # Sec. 6: "a smaller lambda is typically used" for continuous codes
    lr_G: float = LR_G                 # Appendix C: learning rate 1e-3 for G ...
    lr_D: float = LR_D                 # ... and 2e-4 for D (and Q, which shares D's module), Adam
    beta1: float = BETA1               # the DCGAN recipe the paper builds on
    beta2: float = 0.999               # Adam's default
    batch_size: int = 64               # the course's mini-batch (not a number the paper discusses)

    def __post_init__(self):
        checks = {"lr_G": self.lr_G > 0, "lr_D": self.lr_D > 0, "lambda_cat": self.lambda_cat >= 0,
                  "lambda_cont": self.lambda_cont >= 0,
                  "batch_size": isinstance(self.batch_size, int) and self.batch_size >= 1}
        wrong = [f"{name} = {getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if wrong:
            raise ValueError(f"Config needs lr_G, lr_D > 0, lambda_cat, lambda_cont >= 0 (0 turns the term off) and "
                             f"an int batch_size >= 1; got {', '.join(wrong)}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config | None = None):
    """Adam for G and for D + Q (one module: Q's head lives in D), Appendix C's learning rates (or ``cfg``'s)."""
    cfg = cfg or Config()
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=(cfg.beta1, cfg.beta2)),
            torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=(cfg.beta1, cfg.beta2)))


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict:
    """One step of min_{G,Q} max_D V(D, G) - lambda L_I(G, Q) (Eq. 6).

    With c ~ P(c), z ~ N(0, I) and one batch of fakes G(z, c) for both updates (so Q and G see the same (c, x);
    the official code's two session runs draw fresh z, c for G's update, one G forward pass more):
    D and Q (one module, one optimiser) descend L_D - lambda L_I (Q's head and the shared body learn to read c back
    from G(z, c); D's head learns to tell real from fake), then G descends the non-saturating -log D(G(z, c)) -
    lambda L_I with D and Q frozen. ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D";
    ``batches`` yields (x, label) on its device (labels unused). Returns the scalars to log: ``loss_D``,
    ``loss_G`` (the GAN terms), ``D_real`` = mean D(x), ``D_fake`` = mean D(G(z, c)), and the bound of D's step,
    ``L_I_cat`` and ``L_I_cont`` (nats).
    """
    latent = G.latent
    x, _ = batches.next()
    z, c_cat, c_cont = latent.sample(len(x), device=run.device)      # c ~ P(c), z ~ N(0, I)
    with run.autocast():
        fake = G(z, c_cat, c_cont)
        # D and Q: max_D V(D, G) and max_Q L_I(G, Q), one pass through the shared body per batch
        real_logits, _ = D(x)
        fake_logits, q = D(fake.detach())
        L_I = mutual_information_bound(q, c_cat, c_cont, latent)    # E[log Q(c|x)] + H(c)
        loss_D = discriminator_loss(real_logits, fake_logits)
    run.update("D", loss_D - cfg.lambda_cat * L_I["cat"] - cfg.lambda_cont * L_I["cont"])

    set_requires_grad(D, False)                                      # G's step: D and Q are only functions here
    with run.autocast():
        fake_logits_G, q_G = D(fake)
        loss_G = generator_loss_nonsaturating(fake_logits_G)         # -log D(G(z, c))
        loss_info = info_loss(q_G, c_cat, c_cont, latent, cfg.lambda_cat, cfg.lambda_cont)   # -lambda L_I(G, Q)
    run.update("G", loss_G + loss_info)
    set_requires_grad(D, True)
    return dict(loss_D=loss_D.detach(), loss_G=loss_G.detach(), D_real=torch.sigmoid(real_logits.detach()).mean(),
                D_fake=torch.sigmoid(fake_logits.detach()).mean(), L_I_cat=L_I["cat"].detach(),
                L_I_cont=L_I["cont"].detach())
