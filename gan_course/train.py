"""Train a chapter's GAN from the command line, on one device or several, with the chapter's own ``train_step``.

    python -m gan_course.train --list                          # the chapters it can train
    python -m gan_course.train 03_dcgan --help                 # the chapter's parameters, defaults from its notebook
    python -m gan_course.train 03_dcgan --steps 4000 --batch-size 128 --device cuda --amp
    torchrun --nproc_per_node=2 -m gan_course.train 08_biggan --steps 20000 --device cuda

The parameters are the chapter notebook's own ``parameters`` cell: its names (``--batch-size`` sets
``BATCH_SIZE``), its defaults and its comments (the ``--help`` text) are read from the notebook, and its smoke
settings (``--smoke``) from the cell that follows it, so the command line and the notebook cannot disagree on a
default. The run is the notebook's main run: the same networks, ``Config``, ``Run`` name and run configuration, the
same ``train_step`` and the same extras of its loop (BigGAN's EMA of G), so a run trained here resumes in the
notebook (and one trained in the notebook resumes here) and the notebook's explorers show it. Checkpoints go where
the notebook's go (``gan_course.paths.runs_dir()``, set by ``GAN_COURSE_BUILD`` or ``--out``), with the same
resume, NaN guard and move-aside rules (``gan_course.training.Run``); the numbers go to
``build/results/<chapter>.train.json``.

Under ``torchrun`` each of the N processes trains on its own shard of every batch (``--batch-size`` is per
process, so the step is that of one process on N x the batch); see ``gan_course.distributed``. ``--sync-bn``
(the default for 08_biggan under torchrun, BigGAN's cross-replica batch norm) computes batch-norm statistics over all
N shards.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import torch

from . import distributed, paths

__all__ = ["CHAPTERS", "Parameter", "notebook_parameters", "parameters", "build", "train", "main"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


# ============================================================================ the notebook's parameters
EVERY_CHAPTER = {"AMP": False}
"""Settings every chapter takes on the command line, with these defaults where its notebook has no such parameter
(06 and 09 train in full precision in the notebook; ``--amp`` still runs them under autocast here)."""

@dataclasses.dataclass(frozen=True)
class Parameter:
    """One assignment of a notebook's ``parameters`` cell: ``NAME = default  # help``."""

    name: str
    default: object
    source: str            # the default as written in the notebook
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.lower().replace("_", "-")


def _cells(chapter: str) -> tuple[str, str]:
    """The source of the chapter notebook's ``parameters`` cell and of the settings cell after it (``if SMOKE:``
    overrides, then values derived from the parameters), or "" when the next cell is something else."""
    path = NOTEBOOKS / f"{chapter}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: gan_course.train reads each chapter's parameters from its "
                                "notebook, so run it from a clone of the course (the notebooks/ folder beside "
                                "gan_course/).")
    nb = nbformat.read(path, as_version=4)
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if index is None:
        raise ValueError(f"{path.name} has no cell tagged 'parameters'")
    after = nb.cells[index + 1].source if index + 1 < len(nb.cells) else ""
    return nb.cells[index].source, after if after.lstrip().startswith("if SMOKE:") else ""


def notebook_parameters(chapter: str) -> dict[str, Parameter]:
    """The chapter's parameters in the order of its ``parameters`` cell, with their defaults (evaluated as the
    notebook evaluates them, ``SMOKE`` off) and the comment on their line."""
    source, _ = _cells(chapter)
    namespace = _execute(source, smoke=False)
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign):
            continue
        targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
        for target in targets:
            if isinstance(target, ast.Name) and target.id != "SMOKE":
                found[target.id] = Parameter(target.id, namespace[target.id],
                                             ast.get_source_segment(source, node.value) or "", comment)
    return found


def _execute(source: str, smoke: bool) -> dict:
    previous = os.environ.get("GAN_COURSE_SMOKE")
    os.environ["GAN_COURSE_SMOKE"] = "1" if smoke else "0"
    try:
        namespace: dict = {}
        exec(compile(source, "<parameters>", "exec"), namespace)       # assignments only (checked by tests)
        return namespace
    finally:
        if previous is None:
            os.environ.pop("GAN_COURSE_SMOKE", None)
        else:
            os.environ["GAN_COURSE_SMOKE"] = previous


def parameters(chapter: str, overrides: dict | None = None, smoke: bool = False) -> argparse.Namespace:
    """The values the notebook's run would use: its ``parameters`` cell, then ``overrides`` (as papermill injects
    them), then its settings cell: the ``if SMOKE:`` block (after which ``overrides`` are applied again: a value
    asked for explicitly wins over a smoke setting) and what it derives. An unknown name is an error listing the
    valid ones."""
    known = notebook_parameters(chapter)
    overrides = dict(overrides or {})
    unknown = [k for k in overrides if k not in known and k not in EVERY_CHAPTER]
    if unknown:
        raise ValueError(f"{chapter} has no parameter {', '.join(map(repr, unknown))}. Valid parameters: "
                         + ", ".join(known))
    source, settings = _cells(chapter)
    namespace = {**EVERY_CHAPTER, **_execute(source, smoke)}
    namespace.update(overrides)
    namespace["SMOKE"] = smoke
    for node in ast.parse(settings).body:          # the smoke settings, and values derived from the parameters
        exec(compile(ast.Module([node], []), "<settings>", "exec"), namespace)
        if isinstance(node, ast.If):                # what was asked for explicitly wins over the smoke settings
            namespace.update(overrides)
    return argparse.Namespace(**{k: namespace[k] for k in ["SMOKE", *EVERY_CHAPTER, *known]})


# ============================================================================ the chapters' main runs
@dataclasses.dataclass
class Job:
    """What ``train`` needs of a chapter's main run, built exactly as its notebook builds it."""

    run: object                                   # gan_course.training.Run
    step: Callable[[], dict]                      # one iteration: the chapter's train_step, returns its logs
    steps: int
    batch_size: int
    after_step: Callable[[int], None] | None = None
    finish: Callable[[], None] | None = None
    samples: Callable[[], torch.Tensor] | None = None
    show_every: int = 100
    evaluate: Callable[[], dict] | None = None   # numbers the notebook's loop logs every eval_every steps (rank 0)
    eval_every: int = 0


def _gan(p, device, sync_bn: bool) -> Job:
    """Chapter 01's main run (Section 3 of the notebook): Algorithm 1 with the non-saturating generator loss."""
    from .data import load
    from .models import gan
    from .sampling import generate, normal
    from .training import Batches, Run
    from .utils import seed_everything

    dataset = load(p.DATASET, split="train")
    seed_everything(p.SEED)
    G = gan.Generator(z_dim=p.Z_DIM, out_shape=(1, 28, 28), hidden=p.G_HIDDEN).to(device)
    D = gan.Discriminator(in_shape=(1, 28, 28), hidden=p.D_HIDDEN, unit="maxout", pieces=p.MAXOUT_PIECES,
                          dropout=p.DROPOUT, input_dropout=p.INPUT_DROPOUT).to(device)
    cfg = gan.Config(k=p.K, generator_loss="nonsaturating", lr_G=p.LR, lr_D=p.LR, beta1=p.BETA1)
    opt_G, opt_D = gan.optimizers(G, D, cfg)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, batch_size=p.BATCH_SIZE, z_dim=p.Z_DIM,
                  g_hidden=p.G_HIDDEN, d_hidden=p.D_HIDDEN, pieces=p.MAXOUT_PIECES, dropout=p.DROPOUT,
                  input_dropout=p.INPUT_DROPOUT, seed=p.SEED, amp=p.AMP)
    run = Run("01_gan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=config,
              device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = normal(64, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED), device=device)
    return Job(run, lambda: gan.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE,
               samples=lambda: generate(G, z_fixed), show_every=500)


def _cgan(p, device, sync_bn: bool) -> Job:
    """Chapter 02's main run (Section 3 of the notebook): Eq. 2 with paired labels, an EMA of G, the conditioning
    agreement every ``EVAL_EVERY`` steps (rank 0) and the players kept at ``BRANCH_STEP`` for Section 5."""
    from .data import load
    from .lab import cgan as cgan_lab
    from .metrics import course_classifier
    from .models import cgan
    from .sampling import sample
    from .training import EMA, Batches, Run
    from .utils import seed_everything

    dataset = load(p.DATASET, split="train", image_size=28)
    K = len(dataset.classes)
    seed_everything(p.SEED)
    G = cgan.Generator(z_dim=p.Z_DIM, num_classes=K, out_shape=(1, 28, 28), hidden=p.G_HIDDEN,
                       batch_norm=p.G_BATCH_NORM).to(device)
    D = cgan.Discriminator(in_shape=(1, 28, 28), num_classes=K, hidden=p.D_HIDDEN, unit=p.D_UNIT,
                           dropout=p.DROPOUT).to(device)
    if sync_bn:
        G = distributed.sync_batch_norm(G)
    classifier = course_classifier(p.DATASET, device=device)
    cfg = cgan.Config(lr_G=p.LR, lr_D=p.LR, beta1=p.BETA1, label_mode="paired", shuffle_seed=p.SEED)
    opt_G, opt_D = cgan.optimizers(G, D, cfg)
    ema = EMA(G, p.EMA_DECAY)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, batch_size=p.BATCH_SIZE, z_dim=p.Z_DIM,
                  g_hidden=p.G_HIDDEN, g_batch_norm=p.G_BATCH_NORM, d_hidden=p.D_HIDDEN, d_unit=p.D_UNIT,
                  dropout=p.DROPOUT, ema_decay=p.EMA_DECAY, seed=p.SEED, amp=p.AMP)
    run = Run("02_cgan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D, "G_ema": ema}, {"G": opt_G, "D": opt_D},
              config=config, device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = torch.randn(K, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED)).to(device)
    z_grid, y_grid = cgan_lab.class_grid_inputs(z_fixed, range(K))

    def after_step(step):
        ema.update()
        if step + 1 == p.BRANCH_STEP and distributed.is_main():      # the players at BRANCH_STEP, for Section 5
            run.dir.mkdir(parents=True, exist_ok=True)
            torch.save({"G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(),
                        "opt_D": opt_D.state_dict()}, run.dir / "branch.pt")

    def measure():
        return {"agreement": cgan_lab.conditioning_report(G, classifier, n_noise=p.EVAL_NOISE, seed=p.SEED).agreement,
                "agreement_ema": cgan_lab.conditioning_report(ema.module, classifier, n_noise=p.EVAL_NOISE,
                                                              seed=p.SEED).agreement}

    return Job(run, lambda: cgan.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE, after_step=after_step,
               evaluate=measure, eval_every=p.EVAL_EVERY, samples=lambda: sample(ema.module, z_grid, y_grid),
               show_every=p.EVAL_EVERY)


def _dcgan(p, device, sync_bn: bool) -> Job:
    """Chapter 03's main run (Section 3 of the notebook)."""
    from .data import load
    from .metrics import evaluate
    from .models import dcgan
    from .sampling import normal, sample, sampler
    from .training import Batches, Run
    from .utils import seed_everything

    dataset = load(p.DATASET, split="train", image_size=p.IMAGE_SIZE)
    seed_everything(p.SEED)
    G = dcgan.Generator(z_dim=p.Z_DIM, channels=1, image_size=p.IMAGE_SIZE, width=p.WIDTH, init_std=p.INIT_STD)
    D = dcgan.Discriminator(channels=1, image_size=p.IMAGE_SIZE, width=p.WIDTH, leak=p.LEAK, init_std=p.INIT_STD)
    G, D = (distributed.sync_batch_norm(m.to(device)) if sync_bn else m.to(device) for m in (G, D))
    cfg = dcgan.Config(lr_G=p.LR, lr_D=p.LR, beta1=p.BETA1, batch_size=p.BATCH_SIZE)
    opt_G, opt_D = dcgan.optimizers(G, D, cfg)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, image_size=p.IMAGE_SIZE, z_dim=p.Z_DIM, width=p.WIDTH,
                  leak=p.LEAK, init_std=p.INIT_STD, seed=p.SEED, eval_every=p.EVAL_EVERY, eval_n=p.EVAL_N)
    run = Run("03_dcgan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=config,
              device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = normal(64, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED), device=device)

    def measure():                           # the notebook's measure(G): FID and classes covered
        m = evaluate(sampler(G, seed=p.SEED), p.DATASET, n=p.EVAL_N, data_options={"image_size": p.IMAGE_SIZE})
        return {"fid": m["fid"], "classes_covered": m["classes_covered"]}

    return Job(run, lambda: dcgan.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE,
               samples=lambda: sample(G, z_fixed), show_every=p.SHOW_EVERY, evaluate=measure,
               eval_every=p.EVAL_EVERY)


def _biggan(p, device, sync_bn: bool) -> Job:
    """Chapter 08's main run (``train_biggan("08_biggan", STEPS)`` in the notebook), with its EMA of G."""
    from .data import load
    from .lab import spectra
    from .models import biggan
    from .sampling import generate, normal
    from .training import EMA, Batches, Run
    from .utils import seed_everything

    data_options = {"layout": p.LAYOUT} if p.DATASET == "shapes" else {}
    dataset = (load(p.DATASET, image_size=p.IMAGE_SIZE, **data_options) if p.DATASET == "shapes"
               else load(p.DATASET))
    n_classes = len(dataset.classes)
    z_fixed = normal(100, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED + 1), device=device)
    y_fixed = (torch.arange(100) % n_classes).to(device)
    cfg = biggan.Config(lr_G=p.LR_G, lr_D=p.LR_D, betas=p.BETAS, adam_eps=p.ADAM_EPS, d_steps=p.D_STEPS,
                        beta_ortho=p.BETA_ORTHO, ema_decay=p.EMA_DECAY, ema_start=p.EMA_START)
    seed_everything(p.SEED)
    G = biggan.Generator(z_dim=p.Z_DIM, n_classes=n_classes, ch=p.CH, shared_dim=p.SHARED_DIM,
                         image_size=p.IMAGE_SIZE, attn_res=p.ATTN_RES).to(device)
    D = biggan.Discriminator(n_classes=n_classes, ch=p.CH, image_size=p.IMAGE_SIZE, attn_res=p.ATTN_RES).to(device)
    if sync_bn:
        G = distributed.sync_batch_norm(G)
    ema = EMA(G, cfg.ema_decay)
    opt_G, opt_D = biggan.optimizers(G, D, cfg)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, batch_size=p.BATCH_SIZE, image_size=p.IMAGE_SIZE,
                  ch=p.CH, z_dim=p.Z_DIM, shared_dim=p.SHARED_DIM, attn_res=p.ATTN_RES, seed=p.SEED, amp=p.AMP,
                  start=False, **data_options)
    run = Run("08_biggan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D, "G_ema": ema}, {"G": opt_G, "D": opt_D},
              config=config, device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    recorder = run.attach(spectra=spectra.SpectraRecorder({"G": G, "D": D}, every=p.SPECTRA_EVERY))
    def step():
        recorder.record(run.step)
        return biggan.train_step(run, G, D, batches, cfg)

    def after_step(step):
        if step >= cfg.ema_start:                 # the first update copies G, later ones average
            ema.update()
            biggan.refresh_spectral_norm(ema)

    def finish():
        recorder.record(run.step, force=True)
        if int(ema.n_averaged) == 0:
            ema.update()
            biggan.refresh_spectral_norm(ema)

    return Job(run, step, p.STEPS, p.BATCH_SIZE, after_step=after_step, finish=finish,
               samples=lambda: generate(ema if run.step >= cfg.ema_start else G, z_fixed, y_fixed), show_every=100)


def _infogan(p, device, sync_bn: bool) -> Job:
    """Chapter 04's main run (Section 3 of the notebook): D and Q on L_D - lambda L_I, then G."""
    from .data import load
    from .models import infogan as ig
    from .sampling import sample
    from .training import Batches, Run
    from .utils import seed_everything

    latent = ig.Latent(z_dim=p.Z_DIM, categories=p.CATEGORIES, continuous=p.CONTINUOUS)
    dataset = load(p.DATASET, split="train", classes="digits") if p.DATASET == "glyphs" else load(p.DATASET)
    seed_everything(p.SEED)
    G = ig.Generator(latent=latent, channels=1, image_size=28, width=p.WIDTH, hidden=p.HIDDEN).to(device)
    D = ig.Discriminator(latent=latent, channels=1, image_size=28, width=p.WIDTH, hidden=p.HIDDEN).to(device)
    if sync_bn:
        G, D = distributed.sync_batch_norm(G), distributed.sync_batch_norm(D)
    cfg = ig.Config(lambda_cat=p.LAMBDA_CAT, lambda_cont=p.LAMBDA_CONT, lr_G=p.LR_G, lr_D=p.LR_D, beta1=p.BETA1,
                    batch_size=p.BATCH_SIZE)
    opt_G, opt_D = ig.optimizers(G, D, cfg)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, latent=vars(latent), width=p.WIDTH, hidden=p.HIDDEN,
                  seed=p.SEED)
    run = Run("04_infogan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, {"G": opt_G, "D": opt_D},
              config=config, device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = torch.randn(8, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED)).repeat_interleave(
        p.CATEGORIES, 0)
    c_fixed = torch.arange(p.CATEGORIES).repeat(8)
    fixed = (z_fixed.to(device), c_fixed.to(device), torch.zeros(len(z_fixed), p.CONTINUOUS, device=device))
    return Job(run, lambda: ig.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE,
               samples=lambda: sample(G, *fixed), show_every=500)


def _pix2pix(p, device, sync_bn: bool) -> Job:
    """Chapter 05's main run (Section 3 of the notebook): the U-Net G and PatchGAN D on L_cGAN + lambda L1."""
    import math

    from .data import load
    from .lab import pix2pix as lab
    from .models import pix2pix
    from .training import Batches, Run
    from .utils import seed_everything

    if p.DATASET == "glyph-pairs":
        train_set = load(p.DATASET, "train", image_size=p.IMAGE_SIZE, source=p.SOURCE_STYLE, target=p.TARGET_STYLE)
        test_set = load(p.DATASET, "test", image_size=p.IMAGE_SIZE, source=p.SOURCE_STYLE, target=p.TARGET_STYLE)
    else:
        train_set = load(p.DATASET, "train", image_size=p.IMAGE_SIZE, root=paths.real_data_root(p.DATA_ROOT))
        test_set = load(p.DATASET, "test", image_size=p.IMAGE_SIZE, root=paths.real_data_root(p.DATA_ROOT))
    c_in, c_out = train_set.images.shape[1], train_set.images_b.shape[1]
    seed_everything(p.SEED)
    G = pix2pix.UNetGenerator(in_channels=c_in, out_channels=c_out, num_downs=int(math.log2(p.IMAGE_SIZE)),
                              ngf=p.NGF, dropout=p.DROPOUT).to(device)
    D = pix2pix.PatchDiscriminator(in_channels=c_in + c_out, ndf=p.NDF, n_layers=p.N_LAYERS_D).to(device)
    if sync_bn:
        G, D = distributed.sync_batch_norm(G), distributed.sync_batch_norm(D)
    cfg = pix2pix.Config(lambda_l1=p.LAMBDA_L1, lr=p.LR, beta1=p.BETA1)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, source=p.SOURCE_STYLE, target=p.TARGET_STYLE,
                  image_size=p.IMAGE_SIZE, batch_size=p.BATCH_SIZE, dropout=p.DROPOUT, ngf=p.NGF, ndf=p.NDF,
                  n_layers_d=p.N_LAYERS_D, seed=p.SEED, amp=p.AMP)
    run = Run("05_pix2pix" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, pix2pix.optimizers(G, D, cfg),
              config=config, device=device, amp=p.AMP, checkpoint_every=250)
    batches = run.attach(batches=Batches(train_set, p.BATCH_SIZE, seed=p.SEED, device=device))
    x_fixed, y_fixed = (t.to(device) for t in test_set.get_batch(torch.arange(12)))

    def triplets():                                   # (x_i, G(x_i), y_i), two triplets per row of 6
        return torch.stack([x_fixed.cpu(), lab.translate(G, x_fixed).cpu(), y_fixed.cpu()], 1).flatten(0, 1)

    return Job(run, lambda: pix2pix.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE, samples=triplets,
               show_every=250)


def _wgan(p, device, sync_bn: bool) -> Job:
    """Chapter 06's main run (Section 3 of the notebook): WGAN-GP (Gulrajani et al., Algorithm 1), FID every
    ``EVAL_EVERY`` steps and the samples kept for Section 5 (rank 0)."""
    from .data import load
    from .metrics import evaluate
    from .models import wgan
    from .sampling import sample, sampler
    from .training import Batches, Run
    from .utils import seed_everything

    dataset = load(p.DATASET, split="train", image_size=p.IMAGE_SIZE)
    seed_everything(p.SEED)
    G = wgan.Generator(z_dim=p.Z_DIM, channels=1, image_size=p.IMAGE_SIZE, width=p.WIDTH).to(device)
    f = wgan.Critic(channels=1, image_size=p.IMAGE_SIZE, width=p.WIDTH, norm=p.CRITIC_NORM).to(device)
    if sync_bn:
        G = distributed.sync_batch_norm(G)
    cfg = wgan.Config(variant="gp", batch_size=p.BATCH_SIZE, n_critic=p.N_CRITIC, lr=p.LR_GP, betas=p.BETAS_GP,
                      lambda_gp=p.LAMBDA_GP)
    opt_G, opt_f = wgan.optimizers(G, f, cfg)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, image_size=p.IMAGE_SIZE, z_dim=p.Z_DIM, width=p.WIDTH,
                  critic_norm=p.CRITIC_NORM, seed=p.SEED, eval_every=p.EVAL_EVERY, eval_n=p.EVAL_N)
    run = Run("06_wgan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": f}, {"G": opt_G, "D": opt_f}, config=config,
              device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = torch.randn(64, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED)).to(device)

    def measure():
        t = time.time()
        m = evaluate(sampler(G, p.SEED), p.DATASET, n=p.EVAL_N, data_options=dict(image_size=p.IMAGE_SIZE))
        samples = sample(G, z_fixed)
        run.dir.mkdir(parents=True, exist_ok=True)
        torch.save(samples, run.dir / f"samples-{run.step + 1:05d}.pt")   # kept for the notebook's Section 5
        return dict(fid=m["fid"], classes_covered=m["classes_covered"], eval_s=time.time() - t)

    return Job(run, lambda: wgan.train_step(run, G, f, batches, cfg), p.STEPS, p.BATCH_SIZE, evaluate=measure,
               eval_every=p.EVAL_EVERY, samples=lambda: sample(G, z_fixed), show_every=p.EVAL_EVERY)


def _sagan(p, device, sync_bn: bool) -> Job:
    """Chapter 07's main run (Section 3 of the notebook): spectral norm on G and D, TTUR, hinge loss, with its
    ``Monitor`` (spectra every ``SPECTRA_EVERY`` updates; FID, samples every ``EVAL_EVERY``, on rank 0)."""
    from .data import load
    from .lab import sagan as lab
    from .models import sagan
    from .sampling import normal
    from .training import Batches, Run
    from .utils import seed_everything

    data_options = {"layout": p.LAYOUT} if p.DATASET == "shapes" else {}
    dataset = load(p.DATASET, image_size=p.IMAGE_SIZE, **data_options)
    n_classes = len(dataset.classes)
    seed_everything(p.SEED)
    G = sagan.Generator(z_dim=p.Z_DIM, n_classes=n_classes, ch=p.CH, image_size=p.IMAGE_SIZE,
                        attn_res=p.G_ATTN_RES).to(device)
    D = sagan.Discriminator(n_classes=n_classes, ch=p.CH, image_size=p.IMAGE_SIZE, attn_res=p.D_ATTN_RES).to(device)
    cfg = sagan.Config(lr_G=p.LR_G, lr_D=p.LR_D, betas=p.BETAS, n_dis=p.N_DIS)
    opt_G, opt_D = sagan.optimizers(G, D, cfg)
    config = dict(dataclasses.asdict(cfg), batch_size=p.BATCH_SIZE, seed=p.SEED, sn_G=True, sn_D=True,
                  eval_every=p.EVAL_EVERY, dataset=p.DATASET, image_size=p.IMAGE_SIZE, z_dim=p.Z_DIM, ch=p.CH,
                  attn=[p.G_ATTN_RES, p.D_ATTN_RES], amp=p.AMP, **data_options)
    run = Run("07_sagan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, {"G": opt_G, "D": opt_D},
              config=config, device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(dataset, p.BATCH_SIZE, seed=p.SEED, device=device))
    z_fixed = normal(40, p.Z_DIM, generator=torch.Generator().manual_seed(p.SEED))
    y_fixed = torch.arange(40) % n_classes
    monitor = run.attach(monitor=lab.Monitor(G, D, p.DATASET, z_fixed, y_fixed, n=p.EVAL_N, device=device,
                                             data_options=data_options, spectra_every=p.SPECTRA_EVERY))
    if not monitor.steps and distributed.is_main():
        monitor.record(0)                             # FID, samples and spectra before training
    return Job(run, lambda: sagan.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE,
               after_step=lambda step: monitor.track(step + 1), evaluate=lambda: monitor.record(run.step + 1),
               eval_every=p.EVAL_EVERY, samples=lambda: monitor.at(run.step + 1)["samples"],
               show_every=p.EVAL_EVERY)


def _stargan(p, device, sync_bn: bool) -> Job:
    """Chapter 09's main run (Section 3 of the notebook): a D step each iteration, a G step every ``N_CRITIC``-th,
    on the glyphs' attribute domains."""
    from .lab import stargan as lab
    from .models import stargan
    from .training import Batches, Run
    from .utils import seed_everything

    train_set = lab.load_domains("train", p.FAMILIES, p.IMAGE_SIZE)
    test_set = lab.load_domains("test", p.FAMILIES, p.IMAGE_SIZE)
    domains = stargan.all_domains(p.FAMILIES)
    c_dim, channels = len(train_set.domain_names), train_set.images.shape[1]
    cfg = stargan.Config(lambda_cls=p.LAMBDA_CLS, lambda_rec=p.LAMBDA_REC, lambda_gp=p.LAMBDA_GP, n_critic=p.N_CRITIC,
                         lr=p.LR, beta1=p.BETA1, beta2=p.BETA2, g_residual=p.RESIDUAL_G, g_upsample=p.G_UPSAMPLE,
                         d_translation=p.D_TRANSLATION)
    seed_everything(p.SEED)
    G = stargan.Generator(c_dim=c_dim, channels=channels, conv_dim=p.G_CONV_DIM, repeat_num=p.G_REPEAT,
                          residual=cfg.g_residual, upsample=cfg.g_upsample).to(device)
    D = stargan.Discriminator(c_dim=c_dim, channels=channels, image_size=p.IMAGE_SIZE, conv_dim=p.D_CONV_DIM,
                              translation=cfg.d_translation).to(device)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, families=list(p.FAMILIES), image_size=p.IMAGE_SIZE,
                  batch_size=p.BATCH_SIZE, g_conv_dim=p.G_CONV_DIM, g_repeat=p.G_REPEAT, d_conv_dim=p.D_CONV_DIM,
                  seed=p.SEED, amp=p.AMP)
    run = Run("09_stargan" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, stargan.optimizers(G, D, cfg),
              config=config, device=device, amp=p.AMP, checkpoint_every=500)
    batches = run.attach(batches=stargan.DomainBatches(Batches(train_set, p.BATCH_SIZE, seed=p.SEED, device=device),
                                                       seed=p.SEED))
    x_fixed = test_set.get_batch(torch.arange(8))[0]

    def domain_rows():                                # [x, G(x, c_1), ..., G(x, c_8)] per input
        K = len(domains)
        fake = lab.translate(G, x_fixed.repeat_interleave(K, 0), domains.repeat(len(x_fixed), 1).to(device))
        return torch.cat([x_fixed.cpu()[:, None], fake.view(len(x_fixed), K, *x_fixed.shape[1:])], 1).flatten(0, 1)

    return Job(run, lambda: stargan.train_step(run, G, D, batches, cfg), p.STEPS, p.BATCH_SIZE, samples=domain_rows,
               show_every=500)


def _stylegan_xl(p, device, sync_bn: bool) -> Job:
    """Chapter 10's main run (Section 3 of the notebook): progressive growing, the projected discriminator on the
    course classifier's (and, with ``FEATURE_NETS`` holding "vit", the TinyViT's) frozen features, classifier
    guidance; G's weights kept at step ``COMPARE_STEPS`` for the notebook's Section 5."""
    from .data import load
    from .files import atomic_save
    from .lab import stylegan_xl as lab
    from .metrics import course_classifier
    from .models import stylegan_xl as xl
    from .training import Batches, Run
    from .utils import seed_everything

    cfg = xl.Config(z_dim=p.Z_DIM, w_dim=p.W_DIM, mapping_layers=p.MAPPING_LAYERS,
                    pretrained_embeddings=p.PRETRAINED_EMBEDDINGS, projected=p.PROJECTED_D,
                    feature_nets=p.FEATURE_NETS, augment=p.AUGMENT, progressive=p.PROGRESSIVE,
                    stage_steps=p.STAGE_STEPS, lambda_cg=p.LAMBDA_CG, guidance_from=p.GUIDANCE_FROM, lr_G=p.LR_G,
                    lr_D=p.LR_D, betas=p.BETAS)
    glyphs = load(p.DATASET, image_size=p.IMAGE_SIZE)
    n_classes, channels = len(glyphs.classes), glyphs.images.shape[1]
    classifier = course_classifier(p.DATASET, device=device)
    class_features = xl.class_embeddings_from_classifier(classifier, glyphs, n_per_class=p.N_PER_CLASS, seed=p.SEED)
    uses_vit = cfg.projected and "vit" in cfg.feature_nets
    vit = None
    if uses_vit:                                      # the notebook's Section 2 (cached: a re-run loads it)
        from .metrics.tiny_vit import train_tiny_vit

        vit = train_tiny_vit(glyphs, load(p.DATASET, split="test", image_size=p.IMAGE_SIZE), steps=p.VIT_STEPS,
                             batch_size=p.VIT_BATCH, lr=p.VIT_LR, seed=p.SEED, device=device,
                             name="10_stylegan_xl-tinyvit" + ("-smoke" if p.SMOKE else ""))[0]
    seed_everything(p.SEED)
    G = xl.Generator(z_dim=cfg.z_dim, n_classes=n_classes, w_dim=cfg.w_dim, channels=channels,
                     image_size=p.IMAGE_SIZE, widths=p.WIDTHS, mapping_layers=cfg.mapping_layers,
                     class_features=class_features if cfg.pretrained_embeddings else None).to(device)
    if cfg.projected:
        nets = {"cnn": lambda: xl.ClassifierPyramid(course_classifier(p.DATASET)),
                "vit": lambda: xl.ViTPyramid(vit, p.VIT_LAYERS)}
        D = xl.ProjectedDiscriminator(feature_networks=[nets[name]() for name in cfg.feature_nets],
                                      n_classes=n_classes, mix_channels=cfg.mix_channels, augment=cfg.augment,
                                      seed=p.SEED, embed_dim=class_features.shape[1],
                                      class_features=class_features if cfg.pretrained_embeddings else None)
    else:
        D = lab.StandardDiscriminator(n_classes=n_classes, channels=channels, image_size=p.IMAGE_SIZE,
                                      augment=cfg.augment)
    D = D.to(device)
    config = dict(dataclasses.asdict(cfg), dataset=p.DATASET, image_size=p.IMAGE_SIZE, batch_size=p.BATCH_SIZE,
                  widths=p.WIDTHS, n_per_class=p.N_PER_CLASS, amp=p.AMP, seed=p.SEED, keep_at=p.COMPARE_STEPS,
                  vit=dict(steps=p.VIT_STEPS, batch=p.VIT_BATCH, lr=p.VIT_LR, layers=p.VIT_LAYERS) if uses_vit
                  else None)
    run = Run("10_stylegan_xl" + ("-smoke" if p.SMOKE else ""), {"G": G, "D": D}, xl.optimizers(G, D, cfg),
              config=config, device=device, amp=p.AMP)
    batches = run.attach(batches=Batches(glyphs, p.BATCH_SIZE, seed=p.SEED, device=device))
    c_show = torch.arange(60) % n_classes

    def after_step(step):
        if step + 1 == p.COMPARE_STEPS and distributed.is_main():   # G at the comparison runs' budget
            atomic_save(G.state_dict(), lab.snapshot_path(run, p.COMPARE_STEPS))

    return Job(run, lambda: xl.train_step(run, G, D, batches, cfg, classifier=classifier), p.STEPS, p.BATCH_SIZE,
               after_step=after_step, samples=lambda: xl.sample(G, c_show, seed=p.SEED), show_every=100)


CHAPTERS: dict[str, Callable] = {"01_gan": _gan, "02_cgan": _cgan, "03_dcgan": _dcgan, "04_infogan": _infogan,
                                 "05_pix2pix": _pix2pix, "06_wgan": _wgan, "07_sagan": _sagan, "08_biggan": _biggan,
                                 "09_stargan": _stargan, "10_stylegan_xl": _stylegan_xl}
"""The chapters the command line trains, each built as its notebook's main run."""

SYNC_BN_DEFAULT = {"08_biggan"}
"""Chapters whose batch norms are cross-replica under torchrun unless ``--no-sync-bn`` (BigGAN, App. C)."""


def build(chapter: str, overrides: dict | None = None, *, smoke: bool = False, device=None,
          sync_bn: bool | None = None) -> tuple[Job, argparse.Namespace]:
    """The chapter's main run with the notebook's parameters (``parameters``), on ``device`` (default: the
    notebook's ``DEVICE``, or this rank's device under torchrun)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"Unknown chapter {chapter!r}. The command line trains: {', '.join(CHAPTERS)}.")
    p = parameters(chapter, overrides, smoke=smoke)
    device = distributed.init(device if device is not None else p.DEVICE)
    if sync_bn is None:
        sync_bn = chapter in SYNC_BN_DEFAULT
    return CHAPTERS[chapter](p, device, sync_bn and distributed.is_distributed()), p


def train(chapter: str, overrides: dict | None = None, *, smoke: bool = False, device=None,
          sync_bn: bool | None = None, compile: bool = False) -> dict:
    """Build the chapter's main run (``build``), train it for its ``STEPS`` (resuming a checkpoint that fits) and
    write ``build/results/<chapter>.train.json`` (rank 0). Returns the numbers written."""
    job, p = build(chapter, overrides, smoke=smoke, device=device, sync_bn=sync_bn)
    run = job.run
    step_fn = torch.compile(job.step) if compile else job.step
    start = time.time()
    for step in run.steps(job.steps):
        logs = step_fn()
        if job.after_step is not None:
            job.after_step(step)
        run.log(**logs)
        if job.evaluate is not None and run.every(job.eval_every) and distributed.is_main():
            run.log_local(**job.evaluate())
        if job.samples is not None and run.every(job.show_every) and distributed.is_main():
            run.show(samples=job.samples(), keys=None)
    if job.finish is not None:
        job.finish()
    numbers = dict(steps=run.step, batch_size_per_rank=job.batch_size, world_size=distributed.world_size(),
                   global_batch_size=job.batch_size * distributed.world_size(), train_time_s=round(run.elapsed, 2),
                   images_per_s=round(run.images_per_second(job.batch_size * distributed.world_size()), 1),
                   device=str(run.device), amp=str(run.amp_dtype).replace("torch.", "") if run.amp else "off", compile=compile, resumed=run.resumed,
                   wall_time_s=round(time.time() - start, 2), checkpoint=str(run.checkpoint_path),
                   **{f"last_{k}": round(run.history.mean_last(k, 20), 4) for k in run.history.keys()[:6]})
    if distributed.is_main():
        paths.record_result(f"{chapter}.train", **numbers)
    distributed.barrier()
    return numbers


# ============================================================================ the command line
def _value(text: str):
    """A command-line value as the notebook would write it: a Python literal (2e-4, (64, 64), None, True) or a
    plain string ("shapes")."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parser(chapter: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gan_course.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a chapter's main run with its own train_step (checkpoints resume in the notebook).",
        epilog=f"Chapters: {', '.join(CHAPTERS)}. `python -m gan_course.train CHAPTER --help` lists its "
               "parameters. Under torchrun --nproc_per_node=N each process trains on its own shard of every batch.")
    parser.add_argument("chapter", help=f"one of {', '.join(CHAPTERS)}")
    parser.add_argument("--list", action="store_true", help="list the chapters and exit")
    parser.add_argument("--smoke", action="store_true", help="the notebook's smoke settings (a seconds-long check)")
    parser.add_argument("--out", type=Path, default=None, help="build directory (default: $GAN_COURSE_BUILD or build/)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--sync-bn", dest="sync_bn", action="store_true", default=None,
                        help="cross-replica batch norm under torchrun (default for 08_biggan)")
    parser.add_argument("--no-sync-bn", dest="sync_bn", action="store_false")
    if chapter in CHAPTERS:
        group = parser.add_argument_group(f"{chapter}'s parameters (defaults from notebooks/{chapter}.ipynb)")
        for param in notebook_parameters(chapter).values():
            if param.name == "AMP":
                group.add_argument("--amp", dest="AMP", action="store_true", default=None,
                                   help=f"mixed precision (default {param.source}) {param.help}")
                continue
            group.add_argument(param.flag, dest=param.name, type=_value, default=None, metavar=param.name,
                               help=f"default {param.source}. {param.help}".replace("%", "%%"))
        if "AMP" not in notebook_parameters(chapter):
            group.add_argument("--amp", dest="AMP", action="store_true", default=None,
                               help="mixed precision (the notebook itself trains this chapter in full precision)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--list", "-l"):
        print("Chapters the command line trains: " + ", ".join(CHAPTERS))
        return 0
    chapter = argv[0] if not argv[0].startswith("-") else None
    if chapter is not None and chapter not in CHAPTERS:
        _parser(None).error(f"unknown chapter {chapter!r}; valid choices: {', '.join(CHAPTERS)}")
    args = _parser(chapter).parse_args(argv)
    if args.list:
        print("Chapters the command line trains: " + ", ".join(CHAPTERS))
        return 0
    if args.out is not None:
        os.environ["GAN_COURSE_BUILD"] = str(args.out.resolve())
    known = notebook_parameters(args.chapter)
    overrides = {name: getattr(args, name) for name in [*known, *EVERY_CHAPTER]
                 if getattr(args, name, None) is not None}
    with contextlib.ExitStack() as stack:
        stack.callback(distributed.shutdown)           # after a failure: leave at once
        numbers = train(args.chapter, overrides, smoke=args.smoke, sync_bn=args.sync_bn, compile=args.compile)
        main_rank = distributed.is_main()
        distributed.shutdown(wait=True)                # done: leave together
    if main_rank:
        print(json.dumps(numbers, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
