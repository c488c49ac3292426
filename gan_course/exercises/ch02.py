"""Checks for chapter 02 (Mirza & Osindero, 2014, "Conditional Generative Adversarial Nets", arXiv 1411.1784).

1. ``check_condition``: y as "an additional input layer" (Sec. 3.2): [v, onehot(y)], v = z or a flattened image.
2. ``check_conditional_d_loss``: D's side of Eq. 2, L_D = -E[log D(x | y)] - E[log(1 - D(G(z | y) | y))], where
   the generated image is judged with the label it was generated for (the batch's y, as Eq. 2 writes it, or labels
   drawn from p(y), as most implementations do), and G(z | y) is detached.
3. ``check_class_grid_inputs``: the inputs of a class-by-noise grid (row = label, column = noise vector).

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what
to think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lab import cgan as cgan_lab
from ..losses import discriminator_loss
from ..models import cgan
from . import ExerciseError, call, expect, expect_close, passed

_call = call


# ============================================================================ exercise 1
def check_condition(fn) -> bool:
    """``fn(v, y, num_classes) -> [v, onehot(y)]``: v (B, ...) flattened to (B, d), y (B,) class indices."""
    z = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]])
    y = torch.tensor([2, 0, 1])
    K = 5                                                  # y never reaches the last classes: width must still be 5
    expected = cgan.condition(z, y, K)
    try:
        out = _call(fn, z.clone(), y.clone(), K)
    except RuntimeError as err:
        raise ExerciseError(f"Your function failed on z of shape (3, 2) and y = {y.tolist()}: {err}. Concatenate "
                            "the two parts along the feature dimension, torch.cat([v, onehot], dim=1); both must "
                            "be 2-d, (B, d) and (B, num_classes).") from None
    expect(torch.is_tensor(out), f"Return a tensor, got {type(out).__name__}.")
    expect(out.dim() == 2 and out.shape[0] == 3,
           f"Expected one row per sample, shape {tuple(expected.shape)}, got {tuple(out.shape)}. Concatenate along "
           "the feature dimension: torch.cat([v, onehot], dim=1).")
    if out.shape == (3, 3):
        raise ExerciseError("Your result has 3 columns: z's 2 plus a single number for y. A class index as a number "
                            "tells the network that class 2 lies between classes 1 and 3; the paper feeds y as a "
                            "one-hot vector (Sec. 4.1): F.one_hot(y, num_classes).")
    if out.shape == (3, 2 + 3):
        raise ExerciseError("Your one-hot part has 3 columns, but num_classes is 5: F.one_hot(y) without num_classes "
                            "makes it max(y) + 1 wide, which changes from batch to batch. Pass num_classes.")
    expect(out.shape == expected.shape, f"Expected shape {tuple(expected.shape)} (2 noise values + 5 one-hot "
                                        f"entries per sample), got {tuple(out.shape)}.")
    expect(out.is_floating_point(), f"Your result has dtype {out.dtype}; the networks need floats. Convert the "
                                    "one-hot vector with .float() (F.one_hot returns integers).")
    if torch.equal(out, torch.cat([F.one_hot(y, K).float(), z], 1)):
        raise ExerciseError("You put onehot(y) first. Either order trains, but the course's players "
                            "(cgan.Generator, cgan.Discriminator) expect [v, onehot(y)]: v first.")
    expect_close(out, expected, "[z, onehot(y)] for z = " + str(z.tolist()) + ", y = " + str(y.tolist()),
                 hint="The first 2 columns are z unchanged, the last 5 are a 1 at column y and 0 elsewhere.")

    x = torch.arange(2 * 1 * 2 * 2, dtype=torch.float32).view(2, 1, 2, 2) / 8 - 0.5
    y2 = torch.tensor([4, 3])
    try:
        out_x = fn(x.clone(), y2.clone(), K)
    except RuntimeError as err:
        raise ExerciseError(f"With an image batch x of shape {tuple(x.shape)} your function failed ({err}). An MLP "
                            "sees an image as one long vector: flatten it first, v.flatten(1).") from None
    expect(out_x is not None and tuple(out_x.shape) == (2, 4 + K),
           f"For images of shape {tuple(x.shape)} expected shape (2, {4 + K}) (4 pixels + 5 one-hot entries), got "
           f"{None if out_x is None else tuple(out_x.shape)}. Flatten v to (B, C*H*W) first.")
    expect_close(out_x, cgan.condition(x, y2, K), "[x.flatten(1), onehot(y)] for a batch of 2x2 images")

    v = z.clone().requires_grad_(True)
    out_g = fn(v, y, K)
    expect(out_g.requires_grad, "Your result is detached from v, so no gradient would reach G (or D's input). "
                                "Use torch operations only (torch.cat, F.one_hot), no .detach() or torch.tensor(...).")
    return passed("one-hot conditioning [v, onehot(y)]")


# ============================================================================ exercise 2
class _Recorder(nn.Module):
    """Wraps a player and records the inputs (and output) of every call, so a check can see what the learner
    fed it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        # the wrapped player's attributes (G.z_dim, G.num_classes, D.num_classes, ...) read through the recorder,
        # so an answer that draws fresh z or labels from p(y) with them works as it would on the bare player
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def forward(self, a, y):
        out = self.module(a, y)
        self.calls.append((a, torch.as_tensor(y), out))
        return out

    def probability(self, a, y):
        return torch.sigmoid(self(a, y))

    def seen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All inputs and labels of all calls, concatenated (detached)."""
        return (torch.cat([c[0].detach().flatten(1) for c in self.calls]),
                torch.cat([c[1].detach().reshape(-1).long() for c in self.calls]))


def _players(seed: int = 0):
    torch.manual_seed(seed)
    G = cgan.Generator(z_dim=3, num_classes=4, out_shape=(1, 3, 3), hidden=(8,))
    D = cgan.Discriminator(in_shape=(1, 3, 3), num_classes=4, hidden=(8,), dropout=0.0, input_dropout=0.0)
    with torch.no_grad():                                     # a D whose logits are spread out (not all ~0)
        for p in D.parameters():
            p.mul_(4)
    return G, D


def _match(rows: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """For each row, the index of an equal row of ``reference`` (within 1e-6), or -1."""
    close = (rows.unsqueeze(1) - reference.unsqueeze(0)).abs().amax(-1) < 1e-6
    return torch.where(close.any(1), close.float().argmax(1), torch.full((len(rows),), -1))


def _check_pairs(G_rec: _Recorder, D_rec: _Recorder, x: torch.Tensor, y: torch.Tensor, num_classes: int):
    """Which (image, label) pairs D was shown: every real x_j with y_j, every G(z_j | y'_j) with the y'_j G drew
    it for (y' = y, as Eq. 2 writes it, or labels drawn from p(y)). Returns G's images and their labels."""
    expect(bool(G_rec.calls), "G was never called: the generated pair is (G(z | y), y).")
    g_labels = torch.cat([c[1].reshape(-1) for c in G_rec.calls])
    fake = torch.cat([c[2].detach().flatten(1) for c in G_rec.calls])
    expect(len(g_labels) == len(fake) and not g_labels.is_floating_point() and bool(((g_labels >= 0)
           & (g_labels < num_classes)).all()),
           f"G was asked for labels {g_labels.tolist()}: give it one class index in 0..{num_classes - 1} per "
           f"sample, the batch's y (as Eq. 2 writes it) or labels drawn from p(y).")
    g_labels = g_labels.long().cpu()
    expect(bool(D_rec.calls), "D was never called.")
    images, labels = D_rec.seen()
    real_idx, fake_idx = _match(images, x.flatten(1)), _match(images, fake)
    expect(set(real_idx[real_idx >= 0].tolist()) == set(range(len(x))),
           "D did not see every real image x: the first term is -E[log D(x | y)] over the real batch.")
    expect(set(fake_idx[fake_idx >= 0].tolist()) == set(range(len(fake))),
           "D did not see every generated image G(z | y): the second term is -E[log(1 - D(G(z | y) | y))].")
    is_real = real_idx >= 0
    wrong_real = labels[is_real] != y[real_idx[is_real]]
    expect(not bool(wrong_real.any()),
           f"D judged the real images with labels {labels[is_real].tolist()} instead of their own labels "
           f"y = {y.tolist()}. A real pair is an image with its true label, drawn together from p_data(x, y).")
    is_fake = fake_idx >= 0
    wrong_fake = labels[is_fake] != g_labels[fake_idx[is_fake]]
    if bool(wrong_fake.any()):
        drawn = "" if torch.equal(g_labels, y) else (
            " Drawing G's labels from p(y) is fine (most implementations do), but D must then judge each image "
            "with the label G drew it for, not with the real batch's y.")
        raise ExerciseError(
            f"D judged G's images with labels {labels[is_fake].tolist()}, but G drew them for {g_labels.tolist()}. "
            "The generated pair is (G(z | y), y), judged with the label it was generated for: with other labels D "
            f"could never learn to check that an image matches its label, and G would be free to ignore y.{drawn}")
    return torch.cat([c[2].detach() for c in G_rec.calls]), g_labels


def check_conditional_d_loss(fn) -> bool:
    """``fn(D, G, x, y, z) -> L_D``: -E[log D(x | y)] - E[log(1 - D(G(z | y) | y))], G(z | y) detached."""
    G, D = _players()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 3, 3, generator=gen) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 1, 2])
    z = torch.randn(6, 3, generator=gen)
    G_rec, D_rec = _Recorder(G), _Recorder(D)
    out = _call(fn, D_rec, G_rec, x.clone(), y.clone(), z.clone())
    expect(torch.is_tensor(out) and out.dim() == 0,
           f"The loss should be one number (a 0-d tensor), got {tuple(out.shape) if torch.is_tensor(out) else out}: "
           "average each term over the batch.")
    x_fake, y_fake = _check_pairs(G_rec, D_rec, x, y, num_classes=4)
    with torch.no_grad():                               # the loss on the pairs D was shown (z as the learner drew it)
        real_logits, fake_logits = D(x, y), D(x_fake, y_fake)
    expected = discriminator_loss(real_logits, fake_logits)

    value = out.detach().double()
    if torch.allclose(value, -expected.double(), atol=1e-5):
        raise ExerciseError("Your loss is V itself. D *maximises* V; an optimiser minimises, so the loss is -V.")
    swapped = F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()
    if torch.allclose(value, swapped.double(), atol=1e-5):
        raise ExerciseError("You swapped the targets: D should say 1 (real) for (x, y) and 0 for (G(z | y), y).")
    if torch.allclose(value, len(x) * expected.double(), atol=1e-4):
        raise ExerciseError("Your loss is the batch size times too large: estimate each expectation by the mean.")
    if torch.allclose(value, expected.double() / 2, atol=1e-5):
        raise ExerciseError("Your loss is half of L_D: one mean over the real and generated pairs together (e.g. "
                            "binary cross-entropy on the concatenated logits) averages the two terms. L_D adds them: "
                            "each expectation is a mean over its own batch.")
    expect_close(out, expected, "L_D on the test batch",
                 hint="-log D = softplus(-logit) on (x, y), -log(1 - D) = softplus(logit) on (G(z | y), y); average "
                      "each over the batch and add them (or use gan_course.losses.discriminator_loss).")

    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    loss = _call(fn, _Recorder(D), _Recorder(G), x.clone(), y.clone(), z.clone())
    expect(loss.requires_grad, "Your loss is detached, so D cannot learn from it. Use torch operations only.")
    loss.backward()
    leaked = [p.grad for p in G.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    expect(not leaked, "D's loss sent gradients into G: this is D's step, where G is only a source of samples. "
                       "Detach its output, G(z, y).detach(), so the backward pass stops there (and costs less).")
    expect(any(p.grad is not None for p in D.parameters()), "No gradient reached D's weights.")
    return passed("conditional discriminator loss")


# ============================================================================ exercise 3
def check_class_grid_inputs(fn) -> bool:
    """``fn(z, labels) -> (z_grid, y_grid)``: row r has label labels[r], column c has noise z[c], row-major."""
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])          # 3 noise vectors (columns)
    labels = [7, 2]                                                  # 2 labels (rows)
    z_exp, y_exp = cgan_lab.class_grid_inputs(z, labels)
    out = _call(fn, z.clone(), list(labels))
    expect(isinstance(out, (tuple, list)) and len(out) == 2, "Return two tensors: (z_grid, y_grid).")
    z_grid, y_grid = (torch.as_tensor(t) for t in out)
    expect(tuple(z_grid.shape) == (6, 2), f"z_grid should hold one noise vector per cell of the 2 x 3 grid, shape "
                                          f"(6, 2), got {tuple(z_grid.shape)}.")
    expect(tuple(y_grid.shape) == (6,), f"y_grid should hold one label per cell, shape (6,), got "
                                        f"{tuple(y_grid.shape)}.")
    expect(not y_grid.is_floating_point(), f"y_grid has dtype {y_grid.dtype}; labels are class indices (torch.long), "
                                           "which one_hot needs.")
    if torch.equal(z_grid, z.repeat_interleave(2, 0)) and torch.equal(y_grid, torch.tensor(labels).repeat(3)):
        raise ExerciseError("You built the transposed grid: cell i should be row i // 3 (label labels[i // 3]) and "
                            "column i % 3 (noise z[i % 3]). Row-major order fills all columns of row 0 first, so "
                            "the noise cycles (z.repeat) and each label is repeated (repeat_interleave).")
    expect(torch.equal(y_grid.long(), y_exp),
           f"y_grid = {y_grid.tolist()}, expected {y_exp.tolist()}: row r (cells 3r..3r+2) has label labels[r].")
    expect(torch.equal(z_grid, z_exp),
           f"z_grid rows are {z_grid.tolist()}, expected {z_exp.tolist()}: column c uses z[c] in every row, so "
           "that down a column only the label changes.")
    return passed("class-by-noise grid inputs")
