"""The chapter contract, checked on the source: paper modules hold the paper only, and nothing imports in a circle.

Read statically (``ast``), so a test names the file and line; both module-level and function-level imports count
(an import hidden inside a function is still a dependency, and a circle hidden that way is still a circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gan_course"
# what a paper module must not import: plotting, widgets, the course's figure and explorer kits, the lab
FORBIDDEN_IN_MODELS = ("matplotlib", "ipywidgets", "IPython", "seaborn", "gan_course.widgets", "gan_course.viz",
                       "gan_course.lab")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in ``path``, relative imports resolved; ``from P import x`` names
    the sub-module ``P.x`` when there is one, else the package ``P``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
            out += [(s, node.lineno) for s in subs] or [(target, node.lineno)]
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _ in imports(path, known):
            if target in known and target != name:
                edges[name].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a list of modules, first == last), or None; depth-first search with colours."""
    colour, stack = {m: 0 for m in edges}, []

    def visit(m):
        colour[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if colour[n] == 1:
                return stack[stack.index(n):] + [n]
            if colour[n] == 0 and (cycle := visit(n)):
                return cycle
        stack.pop()
        colour[m] = 2
        return None

    for m in sorted(edges):
        if colour[m] == 0 and (cycle := visit(m)):
            return cycle
    return None


def package_edges_removed(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its own sub-modules is not a circle: drop edges from a package to its
    children (``gan_course.data`` -> ``gan_course.data.glyphs``) when the child imports back only the package's
    siblings; every other edge is kept."""
    return {m: {n for n in targets if not n.startswith(m + ".")} for m, targets in edges.items()}


def test_the_cycle_finder_finds_a_planted_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_inside_gan_course():
    cycle = find_cycle(package_edges_removed(graph()))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def model_modules() -> list[Path]:
    return sorted(p for p in (PACKAGE / "models").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", model_modules(), ids=lambda p: p.stem)
def test_paper_modules_import_no_plotting_widgets_or_lab(path):
    known = set(modules())
    bad = [(t, line) for t, line in imports(path, known)
           if any(t == f or t.startswith(f + ".") for f in FORBIDDEN_IN_MODELS)]
    assert not bad, f"{path.name} imports " + ", ".join(f"{t} (line {line})" for t, line in bad) + \
        ": plots, widgets and measurements belong in gan_course/lab/"


@pytest.mark.parametrize("path", model_modules(), ids=lambda p: p.stem)
def test_each_paper_module_has_one_train_step_and_a_config(path):
    tree = ast.parse(path.read_text())
    top = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert "train_step" in top, f"{path.name} has no train_step(run, G, D, batches, cfg)"
    args = [a.arg for a in top["train_step"].args.args]
    assert args[:1] == ["run"] and args[-1] == "cfg", f"{path.name}: train_step's arguments are {args}"
    assert "Config" in top, f"{path.name} has no Config dataclass of the paper's hyper-parameters"
    assert not {"train", "train_steps"} & set(top), f"{path.name} still has a packaged train()/train_steps() loop"
