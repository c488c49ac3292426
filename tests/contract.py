"""The chapter contract's promise about ``train_step``, checked the same way for every paper (imported by tests)."""

from __future__ import annotations

import torch

from gan_course.training import Batches, Run


def one_train_step(paper, G, D, dataset, cfg, expected_keys):
    """Run ``paper.train_step`` once on a fresh ``Run`` and check the contract: the logs are exactly
    ``expected_keys``, detached 0-d tensors; both players' weights changed; D is unfrozen afterwards.

    Returns ``(logs, batches, (opt_G, opt_D))`` for the paper-specific checks that follow.
    """
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in (("G", G), ("D", D))}
    opt_G, opt_D = paper.optimizers(G, D, cfg)
    run = Run("step", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, progress=False, live=False)
    batches = Batches(dataset, cfg.batch_size, seed=0)
    logs = paper.train_step(run, G, D, batches, cfg)
    assert set(logs) == set(expected_keys)
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in logs.values())
    for key, net in (("G", G), ("D", D)):
        assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), before[key], strict=True)), key
    assert all(p.requires_grad for p in D.parameters())          # D is unfrozen again after G's step
    return logs, batches, (opt_G, opt_D)
