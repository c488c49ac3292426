"""Train (reproduce) a course classifier: ``python -m gan_course.metrics.train_classifier --dataset glyphs``.

Trains the ``CourseClassifier`` of ``gan_course.metrics.classifier`` on the train split of a dataset, measures
its accuracy on the whole test split and writes ``gan_course/metrics/weights/<dataset>.pt`` (an fp16
``state_dict`` and ``meta``) and its SHA-256 in ``weights/SHA256SUMS``, then rewrites ``weights/README.md`` from
the metadata of every weights file.

    python -m gan_course.metrics.train_classifier --dataset glyphs
    python -m gan_course.metrics.train_classifier --dataset shapes
    python -m gan_course.metrics.train_classifier --dataset mnist --root ../shared/datasets
    python -m gan_course.metrics.train_classifier --dataset fashion-mnist --root /path/to/data   # not shipped

Deterministic under ``--seed`` on a given machine and thread count: the weights, the batch order and dropout
all come from seeded generators. Recipe: AdamW (lr 3e-3, weight decay 5e-4) with a one-cycle schedule,
batch 128, 1 epoch, plain cross-entropy (label smoothing would cap the confidence, and so the Inception
Score, and blur the features); two to four minutes on one CPU thread.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import checksums, files
from .classifier import WEIGHTS_DIR, WIDTHS, build, weights_path

DATASETS = ("glyphs", "shapes", "mnist", "fashion-mnist")
DEFAULTS = dict(epochs=1, batch_size=128, lr=3e-3, weight_decay=5e-4, label_smoothing=0.0, seed=0)


def _load(dataset: str, split: str, root: str | None):
    from ..data import load
    kwargs = {"root": root} if root and dataset in ("mnist", "fashion-mnist") else {}
    return load(dataset, split=split, **kwargs)


@torch.no_grad()
def accuracy(net, dataset, batch_size: int = 1000, limit: int | None = None) -> float:
    """Fraction of the (first ``limit``) images of ``dataset`` that ``net`` (anything with ``logits(x)``)
    classifies correctly, in eval mode on ``net``'s device; ``net``'s mode is restored afterwards."""
    was = net.training
    net.eval()
    device = next(net.parameters()).device
    n = len(dataset) if limit is None else min(limit, len(dataset))
    correct = 0
    for start in range(0, n, batch_size):
        x, y = dataset.get_batch(torch.arange(start, min(start + batch_size, n)))[:2]
        correct += (net.logits(x.to(device)).argmax(1).cpu() == y).sum().item()
    net.train(was)
    return correct / n


def train(dataset: str, epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"],
          lr: float = DEFAULTS["lr"], weight_decay: float = DEFAULTS["weight_decay"],
          label_smoothing: float = DEFAULTS["label_smoothing"], seed: int = DEFAULTS["seed"],
          root: str | None = None, limit: int | None = None, test_limit: int | None = None, log=print):
    """Train the classifier of ``dataset``; return ``(net, meta)`` (``net`` in eval mode, fp32)."""
    train_set, test_set = _load(dataset, "train", root), _load(dataset, "test", root)
    if limit:
        train_set = train_set.subset(torch.arange(min(limit, len(train_set))))
    c, s = train_set.images.shape[1], train_set.images.shape[-1]
    meta = dict(dataset=dataset, classes=list(train_set.classes), channels=int(c), image_size=int(s),
                widths=list(WIDTHS), num_features=WIDTHS[-1])
    torch.manual_seed(seed)
    net = build(meta)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(train_set) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.25)
    t0 = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(train_set), generator=g)
        total = 0.0
        for i in range(steps_per_epoch):
            x, y = train_set.get_batch(order[i * batch_size:(i + 1) * batch_size])
            loss = F.cross_entropy(net.train_forward(x), y, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f} ({time.time() - t0:.0f} s)")
    seconds = time.time() - t0
    net.load_state_dict({k: v.half().float() if v.is_floating_point() else v       # the shipped (fp16)
                         for k, v in net.state_dict().items()})                     # weights are measured
    net.eval()
    acc = accuracy(net, test_set, limit=test_limit)
    log(f"test accuracy {acc:.4%} on {test_limit or len(test_set)} test images")
    meta.update(test_accuracy=acc, test_images=int(test_limit or len(test_set)), train_images=len(train_set),
                epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                label_smoothing=label_smoothing, seed=seed, train_seconds=round(seconds, 1),
                torch_version=str(torch.__version__), threads=torch.get_num_threads(),
                trained=time.strftime("%Y-%m-%d"))
    return net, meta


def save(net, meta: dict, path: Path) -> Path:
    """Write ``{"state_dict": fp16 tensors, "meta": meta}`` to ``path`` (atomically) and record its SHA-256 in the
    ``SHA256SUMS`` beside it, which ``course_classifier`` checks on load."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = files.atomic_save({"state_dict": state, "meta": meta}, path)
    checksums.record(path)
    return path


def write_readme(directory: Path = WEIGHTS_DIR) -> Path:
    """Rewrite ``weights/README.md``: one row per weights file, from its metadata."""
    rows = []
    for p in sorted(Path(directory).glob("*.pt")):
        meta = torch.load(p, map_location="cpu", weights_only=True)["meta"]
        rows.append(f"| `{p.name}` | {meta['channels']}x{meta['image_size']}x{meta['image_size']} | "
                    f"{len(meta['classes'])} | {meta['test_accuracy']:.2%} ({meta['test_images']:,} test images) | "
                    f"{p.stat().st_size / 1024:.0f} KB | {meta['epochs']} epochs, {meta['train_seconds']:.0f} s "
                    f"on {meta['threads']} threads | `{meta['command']}` |")
    text = "\n".join([
        "# Course classifiers",
        "",
        "Feature networks of `gan_course.metrics` (see `classifier.py`): a small CNN per dataset whose 128-d",
        "global-average-pooled last block gives the features of FID/KID/precision-recall and whose logits give the",
        "Inception Score and mode coverage. Each file holds `{\"state_dict\": fp16 tensors, \"meta\": {...}}`;",
        "`meta` records the classes, input size, test accuracy and the command below, which reproduces it",
        "(deterministic under its seed on a given machine and thread count). This table is written by the script,",
        "and so is `SHA256SUMS` (the SHA-256 of each file, checked when a classifier is loaded).",
        "",
        "| file | input | classes | test accuracy | size | training | command |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Fashion-MNIST is supported by the script (`--dataset fashion-mnist --root DIR`) but no weights are shipped",
        "(the data is not available offline where these were trained).",
        "",
    ])
    path = Path(directory) / "README.md"
    path.write_text(text)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", default=None, help="directory of real datasets (MNIST); default $GAN_COURSE_DATA")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images only")
    parser.add_argument("--test-limit", type=int, default=None, help="measure on the first TEST_LIMIT test images")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: fastest on a busy machine; results depend on it slightly)")
    parser.add_argument("--out", type=Path, default=None, help="weights file (default weights/<dataset>.pt)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    net, meta = train(args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      root=args.root, limit=args.limit, test_limit=args.test_limit)
    command = ["python -m gan_course.metrics.train_classifier", "--dataset", args.dataset]
    for flag, value, default in (("--epochs", args.epochs, DEFAULTS["epochs"]),
                                 ("--batch-size", args.batch_size, DEFAULTS["batch_size"]),
                                 ("--lr", args.lr, DEFAULTS["lr"]), ("--seed", args.seed, DEFAULTS["seed"]),
                                 ("--limit", args.limit, None), ("--test-limit", args.test_limit, None),
                                 ("--threads", args.threads, 1)):
        if value != default:
            command += [flag, str(value)]
    if args.root:
        command += ["--root", "$GAN_COURSE_DATA"]
    meta["command"] = " ".join(shlex.quote(c) if not c.startswith(("python -m", "$")) else c for c in command)
    out = args.out or weights_path(args.dataset)
    save(net, meta, out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
    if Path(out).resolve().parent == WEIGHTS_DIR:
        from .classifier import _load
        _load.cache_clear()
        print(f"wrote {write_readme()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
