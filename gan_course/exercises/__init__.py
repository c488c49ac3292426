"""Checks for the chapters' exercises: one module per chapter (``ch01``, ``ch02``, ...).

Each ``check_*`` function runs the learner's code on cases with known answers and either prints a success
line or raises ``ExerciseError`` with a message that says what was wrong and how to think about it, never
just "wrong".
"""

from __future__ import annotations

import torch


class ExerciseError(AssertionError):
    """The learner's answer does not pass a check; the message explains why."""


def passed(name: str) -> bool:
    print(f"\u2705 {name}: all checks passed.")
    return True


def expect_close(actual, expected, what: str, hint: str = "", atol: float = 1e-5, rtol: float = 1e-4):
    """Raise ``ExerciseError`` unless ``actual`` matches ``expected`` (tensors or numbers) within tolerance."""
    if actual is None:
        raise ExerciseError(f"{what}: your function returned None. Did you forget `return`?")
    actual_t = torch.as_tensor(actual, dtype=torch.float64).detach().cpu()
    expected_t = torch.as_tensor(expected, dtype=torch.float64).detach().cpu()
    if actual_t.shape != expected_t.shape:
        raise ExerciseError(f"{what}: expected shape {tuple(expected_t.shape)}, got {tuple(actual_t.shape)}. "
                            f"{hint}".strip())
    if not torch.allclose(actual_t, expected_t, atol=atol, rtol=rtol):
        got = actual_t.flatten()[:4].tolist()
        want = expected_t.flatten()[:4].tolist()
        raise ExerciseError(f"{what}: expected {_fmt(want)}, got {_fmt(got)}. {hint}".strip())


def call(fn, *args):
    """Call the learner's function; a clear ``ExerciseError`` if it is still the stub or forgets to return."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise ExerciseError("Your function still raises NotImplementedError: replace it with your answer.") from None
    if out is None:
        raise ExerciseError("Your function returned None. Did you forget `return`?")
    return out


def call_tensor(fn, *args) -> torch.Tensor:
    """``call``, and a clear ``ExerciseError`` unless the answer is a tensor."""
    out = call(fn, *args)
    if not torch.is_tensor(out):
        raise ExerciseError(f"Return a torch tensor, got {type(out).__name__}.")
    return out


def expect(condition: bool, message: str):
    """Raise ``ExerciseError(message)`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + ("]" if len(values) < 4 else ", ...]")
