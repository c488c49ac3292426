"""pyproject.toml and environment.yml declare the same dependencies; the two-command set-up is in place."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).parent.parent
CONDA_NAMES = {"pytorch": "torch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\s\[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    return {_name(d) for d in deps}


def _environment_names(path=ROOT / "environment.yml"):
    names, in_pip, in_deps = set(), False, False
    for line in path.read_text().splitlines():
        stripped = line.split("#")[0].rstrip()
        if re.match(r"^\S", stripped):  # a top-level key: name, channels, dependencies
            in_deps = stripped.startswith("dependencies:")
            continue
        if not in_deps:
            continue
        if re.match(r"^\s*-\s*pip:\s*$", stripped):
            in_pip = True
            continue
        m = re.match(r"^(\s*)-\s*(\S.*)$", stripped)
        if not m or in_pip and len(m.group(1)) > 2:
            continue
        name = _name(m.group(2))
        if name not in ("python", "pip"):
            names.add(CONDA_NAMES.get(name, name))
    return names


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_names(), _environment_names()
    assert py == env, f"only in pyproject.toml: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_binder_builds_from_conda_forge_and_installs_the_course():
    env_text = (ROOT / "binder" / "environment.yml").read_text()
    py, env = _pyproject_names(), _environment_names(ROOT / "binder" / "environment.yml")
    assert py == env, f"only in pyproject.toml: {sorted(py - env)}; only in binder: {sorted(env - py)}"
    for text in (env_text, (ROOT / "environment.yml").read_text()):
        channels = re.search(r"^channels:\n((?:\s+-.*\n)+)", text, flags=re.M).group(1)
        assert [c.split("#")[0].strip(" -") for c in channels.splitlines()] == ["conda-forge"]
    assert "-e ." not in env_text                       # Binder cannot build an editable install of the repo
    post = ROOT / "binder" / "postBuild"
    assert "pip install" in post.read_text() and post.stat().st_mode & 0o111


def test_core_dependencies_declared():
    for name in ("torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets", "nbval", "papermill", "seaborn"):
        assert name in _pyproject_names()


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text[: text.index("```", text.index("```") + 3)]
    assert "make course" in first_block and "make test" in first_block


def test_ci_runs_make_test_with_shared_datasets():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "GAN_COURSE_DATA" in ci and "../shared/datasets" in ci


def test_one_version_everywhere_and_the_licence_files_exist():
    import gan_course

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert gan_course.__version__ == version
    assert re.search(rf"^version: {re.escape(version)}$", (ROOT / "CITATION.cff").read_text(), flags=re.M)
    releases = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    first_release = next(r for r in releases if r != "Unreleased")     # changes since it may sit above it
    assert first_release == version, f"CHANGELOG.md's latest entry is {first_release}, the package is {version}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), f"license-files names {pattern!r}, which matches no file"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSES" / "README.md").read_text()
