"""Embedding images with a feature network: the step every metric starts with.

``extract`` runs a network (a ``FeatureNet`` or its name, see ``registry``) over any image source; ``features_of``
also accepts features computed before, so a metric can reuse them.
"""

from __future__ import annotations

import torch

from .features import FeatureNet
from .registry import feature_network
from .sources import ImageSource


@torch.no_grad()
def extract(net: FeatureNet | str, source, n: int | None = None, what: str = "features", batch_size: int = 256,
            seed: int = 0, progress: bool = False) -> torch.Tensor:
    """Embed ``n`` images of ``source`` with ``net``: an (n, D) float32 CPU tensor.

    ``source`` is anything ``ImageSource`` takes (tensor, dataset, ``sample(n)`` callable); ``what`` is
    ``"features"`` or ``"logits"``. Batches run on ``net``'s device; ``progress=True`` shows a tqdm bar.
    """
    net = feature_network(net) if isinstance(net, str) else net
    if what not in ("features", "logits"):
        raise ValueError(f"what must be 'features' or 'logits', got {what!r}")
    src = ImageSource(source, n=n, seed=seed)
    fn = getattr(net, what)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(src), desc=f"{what} ({getattr(net, 'name', type(net).__name__)})", unit="img",
                   leave=False)
    out = []
    for x in src.batches(batch_size):
        out.append(fn(x).cpu())
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    return torch.cat(out)


def features_of(source, net: FeatureNet | str, n: int | None = None, seed: int = 0, batch_size: int = 256,
                progress: bool = False, what: str = "features") -> torch.Tensor:
    """Features (N, D) of a source: an (N, D) tensor is taken as features already computed (its first ``n``
    rows); anything else goes through ``ImageSource`` and ``net`` (a ``FeatureNet`` or a name)."""
    if isinstance(source, torch.Tensor) and source.ndim == 2:
        return source[:n] if n is not None else source
    return extract(net, ImageSource(source, n=n, seed=seed), what=what, batch_size=batch_size, progress=progress)
