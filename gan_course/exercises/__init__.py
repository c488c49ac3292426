"""Checks for the chapters' exercises: one module per chapter (``ch01``, ``ch02``, ...).

Each ``check_*`` function runs the learner's code on cases with known answers and either prints a success
line or raises ``ExerciseError`` with a message that says what was wrong and how to think about it, never
just "wrong".

Every ``check_*`` of every chapter is wrapped by ``learner_check`` when this package is imported, so the
mistakes that are about *calling* a check, not about the answer, get the same clear message everywhere:

- passing a function's result instead of the function (``check_x(my_fn(x))``, ``None``): names what was passed;
- a function with the wrong number of parameters: names its signature and how the check calls it;
- an exception raised inside the learner's own code: says so, and where (their traceback stays above).
"""

from __future__ import annotations

import functools
import inspect
import linecache
import re
import sysconfig
from pathlib import Path

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
    """Call the learner's function; a clear ``ExerciseError`` if it is still the stub or forgets to return, or if it
    cannot take ``args`` (its parameters are compared with them first, ``inspect.signature``)."""
    _expect_parameters(fn, args)
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


# --- the machinery every check shares: what was passed, how it is called, whose exception it is ------------------
_LIBRARY_DIRS = tuple({str(Path(p).resolve()) for p in (Path(__file__).parents[1], Path(torch.__file__).parent,
                        *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")))})
_RUNNING: list[tuple] = []       # (check function, {parameter: the learner's function}) of the checks running now


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _codes(fn) -> set:
    """The code objects of the learner's callable ``fn`` (a function, lambda, method, partial or callable object)."""
    fn = getattr(fn, "func", fn)                                  # functools.partial
    fn = getattr(fn, "__func__", fn)                              # bound method
    code = getattr(fn, "__code__", None)
    if code is None and not inspect.isroutine(fn):                # a callable object: its __call__
        code = getattr(type(fn).__call__, "__code__", None)
    return {code} if code is not None else set()


def _signature(fn) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):                               # builtins without a signature
        return None


def _passed_as(fn) -> tuple:
    """(check function, parameter name) under which ``fn`` was passed to a running check, else (None, None)."""
    for check, fns in reversed(_RUNNING):
        for param, value in fns.items():
            if value is fn:
                return check, param
    return None, None


def _how_called(check, param: str, fn) -> str:
    """How ``check`` calls the learner's ``fn`` (passed as ``param``), quoted from the check's docstring, which
    opens with e.g. ``fn(real_logits, fake_logits) -> loss``; "" if the docstring does not say."""
    found = re.search(rf"``{re.escape(param)}(\([^`]*?\))", inspect.getdoc(check) or "")
    return f" {check.__name__} calls it as {_name(fn)}{' '.join(found.group(1).split())}." if found else ""


def _arity_message(fn, detail: str) -> str:
    check, param = _passed_as(fn)
    who = check.__name__ if check else "The check"
    sig = _signature(fn)
    return (f"{who}: your function `{_name(fn)}{sig if sig is not None else '(...)'}` cannot take the arguments the "
            f"check passes it ({detail}).{_how_called(check, param, fn) if check else ''} Give your function exactly "
            "those parameters, in that order.")


def _expect_parameters(fn, args: tuple) -> None:
    """Raise ``ExerciseError`` unless ``fn``'s parameters can take ``args`` (compared by ``inspect.signature``)."""
    sig = _signature(fn)
    if sig is None:
        return
    try:
        sig.bind(*args)
    except TypeError as e:
        n = len(args)
        raise ExerciseError(_arity_message(fn, f"{n} positional argument{'s' * (n != 1)}; {e}")) from None


def _is_library(filename: str) -> bool:
    return filename.startswith(_LIBRARY_DIRS) or "site-packages" in filename


def _where(filename: str, lineno: int) -> str:
    line = linecache.getline(filename, lineno).strip()
    cell = "ipykernel" in filename or filename.startswith("<ipython-input")
    place = f"line {lineno} of {'its notebook cell' if cell else Path(filename).name}"
    return f"{place}: `{line}`" if line else place


def _from_learner(exc: BaseException, fns: dict) -> tuple | None:
    """(the learner's function, where in their code) if ``exc`` was raised while their code ran, else None."""
    codes = {code: fn for fn in fns.values() for code in _codes(fn)}
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    culprit = next((codes[code] for code, _ in frames if code in codes), None)
    if culprit is None:
        return None
    theirs = [(code, n) for code, n in frames if not _is_library(code.co_filename)]   # innermost of their lines
    code, lineno = theirs[-1] if theirs else frames[-1]
    return culprit, _where(code.co_filename, lineno)


_CALL_ERROR = re.compile(r"^(?P<name>[\w.<>]+)\(\) (takes|missing|got (an unexpected|multiple values))")


def _not_a_function(check, param: str, value) -> str:
    name = check.__name__
    example = ", ".join(name.removeprefix("check_") if p == "fn" else p for p in inspect.signature(check).parameters)
    what = "None" if value is None else f"a {type(value).__name__}"
    if torch.is_tensor(value):
        what += f" of shape {tuple(value.shape)}"
    return (f"{name} expects your function itself (e.g. {name}({example})), not its result: you passed {what} "
            f"for `{param}`. Write the function's name without parentheses after it: {name}(my_fn), not "
            f"{name}(my_fn(x)); the check calls it on its own cases.")


def learner_check(check):
    """Wrap exercise check ``check(fn, ...)`` with the shared argument checks and error attribution (module doc)."""
    sig = inspect.signature(check).replace(return_annotation=inspect.Signature.empty)

    @functools.wraps(check)
    def guarded(*args, **kwargs):
        try:
            fns = dict(sig.bind(*args, **kwargs).arguments)
        except TypeError as e:
            n = len(sig.parameters)
            raise ExerciseError(f"{check.__name__} takes {n} function{'s' * (n != 1)}: {check.__name__}{sig} "
                                f"({e}).") from None
        for param, value in fns.items():
            if not callable(value):
                raise ExerciseError(_not_a_function(check, param, value))
        _RUNNING.append((check, fns))
        try:
            return check(*args, **kwargs)
        except ExerciseError:
            raise
        except Exception as e:
            learner = _from_learner(e, fns)
            if learner is not None:
                fn, where = learner
                if isinstance(e, NotImplementedError):
                    raise ExerciseError(f"Your function `{_name(fn)}` still raises NotImplementedError: replace it "
                                        "with your answer.") from None
                raise ExerciseError(
                    f"{check.__name__}: your function `{_name(fn)}` raised {type(e).__name__}: {e}\nThat error came "
                    f"from your own code, at {where} (see the traceback above), not from the check."
                    f"{_how_called(check, _passed_as(fn)[1], fn)}") from e
            found = _CALL_ERROR.match(str(e)) if isinstance(e, TypeError) else None
            called = [fn for fn in fns.values()
                      if found and found["name"] in (_name(fn), getattr(fn, "__qualname__", None))]
            if called:                   # the check called a function directly, with arguments it cannot take
                raise ExerciseError(_arity_message(called[0], str(e))) from None
            raise
        finally:
            _RUNNING.pop()

    return guarded


def _guard_checks(module) -> None:
    """Replace every ``check_*`` function defined in chapter ``module`` by its ``learner_check`` wrapper."""
    for name, obj in list(vars(module).items()):
        if name.startswith("check_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
            setattr(module, name, learner_check(obj))


from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10  # noqa: E402 - they use the helpers above

for _chapter in (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10):
    _guard_checks(_chapter)
