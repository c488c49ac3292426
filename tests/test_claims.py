"""Claims as data (gan_course.claims): the checks compare medians, count seeds, refuse to call a two-arm claim on
too few seeds, name what is missing, and reach RESULTS.md; every chapter's declared quantities are recorded by
its notebook."""

import ast
import importlib
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from gan_course.claims import Claim, check, markdown, records, report

ROOT = Path(__file__).resolve().parent.parent


def one(claim, results):
    (outcome,) = check([claim], results)
    return outcome


def test_a_bound_compares_the_median_and_counts_the_seeds():
    claim = Claim("ratio", "Sec. 3", "r", ">=", 10)
    o = one(claim, {"r": [27.0, 4.0, 30.0]})
    assert o.held is True and o.left.median == 27.0 and o.seeds_held == (2, 3)
    assert "27 [4, 30] (3 seeds)" in o.measured and o.verdict == "yes (2/3 seeds)"
    assert one(claim, {"r": [9.0, 4.0, 30.0]}).held is False            # the median, not the best seed
    assert one(claim, {"r": [9.0, 4.0, 30.0]}).verdict.startswith("NO")


def test_two_arms_are_paired_by_seed_and_need_enough_seeds():
    claim = Claim("modes", "A&B", "a", ">", "b")
    o = one(claim, {"a": [8, 6, 8], "b": [5, 7, 3]})
    assert o.held is True and o.seeds_held == (2, 3)
    few = one(claim, {"a": [8, 6], "b": [5, 4]})
    assert few.held is False and not few.enough_seeds and "too few to call" in few.verdict
    assert "held in this run" in few.verdict                             # which way the run went is still said
    assert one(claim, {"a": 8, "b": 5}).held is False                   # one run of each arm: not a finding
    assert one(Claim("t", "Thm. 1", "gap", "<=", 1e-6, deterministic=True), {"gap": 0.0}).held is True


def test_factor_and_each_relation():
    assert one(Claim("x", "", "a", ">", "b", factor=2), {"a": [5] * 3, "b": [2] * 3}).held is True
    assert one(Claim("x", "", "a", ">", "b", factor=3), {"a": [5] * 3, "b": [2] * 3}).held is False
    for relation, expected in (("<", False), ("<=", True), (">", False), (">=", True)):
        assert one(Claim("x", "", "a", relation, 2.0, deterministic=True), {"a": 2.0}).held is expected


def test_missing_quantities_are_named_not_guessed():
    o = one(Claim("x", "", "a", ">", "b"), {"a": [1, 2, 3]})
    assert o.held is None and o.missing == ("b",) and "no b" in o.measured and o.verdict == "not measured"
    off = one(Claim("x", "", "a", ">", "b"), {"a": 1.0, "b": float("nan")})          # a measurement switched off
    assert off.held is None and off.missing == ("b",) and "b NaN" in off.measured and "no b" not in off.measured
    assert one(Claim("x", "", "a", ">", "b"), {"a": 1.0, "b": [float("nan"), 0.0, 0.0]}).held is not None


def test_bad_claims_and_bad_values_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"relation must be one of \['<', '<=', '>', '>='\]"):
        Claim("x", "", "a", "==", 1)
    with pytest.raises(TypeError, match="right must be"):
        Claim("x", "", "a", ">", [1, 2])
    with pytest.raises(TypeError, match="quantity 'a' must be a number"):
        check([Claim("x", "", "a", ">", 1)], {"a": "high"})
    with pytest.raises(ValueError, match="unique"):
        check([Claim("x", "", "a", ">", 1), Claim("x", "", "b", ">", 1)], {})


def test_report_records_and_markdown_carry_the_verdicts():
    outcomes = check([Claim("ratio", "Sec. 3: much stronger", "r", ">=", 10), Claim("gone", "", "q", ">", 1)],
                     {"r": [27, 30, 12]})
    text = report(outcomes)
    assert text.splitlines()[0].split() == ["claim", "this", "run", "held?"]
    assert "ratio" in text and "yes (3/3 seeds)" in text and "Sec. 3: much stronger" in text
    rows = records(outcomes)
    assert json.loads(json.dumps(rows)) == rows                          # JSON-ready for record_result
    assert rows[0]["held"] is True and rows[0]["seeds"] == 3 and rows[1]["held"] is None
    table = markdown(rows)
    assert table[0].startswith("| claim |") and len(table) == 4 and "yes (3/3 seeds)" in table[2]


def _benchmarks_module(name):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_results_md_lists_a_chapters_claims(tmp_path):
    run = _benchmarks_module("run")
    rows = records(check([Claim("ratio", "Sec. 3", "r", ">=", 10)], {"r": [27, 30, 12]}))
    (tmp_path / "01_gan.json").write_text(json.dumps({"wall_time_s": 1.0, "claims": rows, "r": [27, 30, 12]}))
    text = run.write_table(run.collect(results_dir=tmp_path), tmp_path / "RESULTS.md")
    assert "### 01_gan: claims" in text and "| ratio | Sec. 3 | r 27 [12, 30] (3 seeds) >= 10 | yes (3/3 seeds) |" in text
    assert "| claims |" not in text                                      # not dumped raw into the details


def _recorded_quantities(name: str) -> set[str]:
    """Every key the notebook's code puts into ``results`` (``results.update(key=...)``, ``results["key"] = ...``)."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    keys = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "results"):
                keys |= {k.arg for k in node.keywords if k.arg}
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "results" \
                    and isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
    return keys


@pytest.mark.parametrize("lab, notebook", [("measuring_gans", "00_measuring_gans"), ("gan", "01_gan"),
                                          ("cgan", "02_cgan"), ("infogan", "04_infogan"), ("wgan", "06_wgan")])
def test_every_claimed_quantity_is_recorded_by_the_chapter(lab, notebook):
    claims = importlib.import_module(f"gan_course.lab.{lab}").CLAIMS
    recorded = _recorded_quantities(notebook)
    assert "claims" in recorded, f"{notebook} does not record its claims table"
    for claim in claims:
        for quantity in claim.quantities():
            assert quantity in recorded, f"{notebook} never records {quantity!r} (claim {claim.name!r})"


def test_claims_over_seeds_pool_each_seeds_run_and_reach_results_md(tmp_path, monkeypatch):
    over = _benchmarks_module("claims")
    assert over.chapter_claims("01_gan") is importlib.import_module("gan_course.lab.gan").CLAIMS
    with pytest.raises(ValueError, match="Valid choices"):
        over.chapter_claims("11_diffusion")
    assert over.chapter_claims("00_measuring_gans") is importlib.import_module("gan_course.lab.measuring_gans").CLAIMS
    monkeypatch.setitem(sys.modules, "gan_course.lab.measuring_gans", None)      # as if the chapter had no lab
    with pytest.raises(ValueError, match="no lab module"):
        over.chapter_claims("00_measuring_gans")
    monkeypatch.delitem(sys.modules, "gan_course.lab.measuring_gans")
    monkeypatch.setattr(importlib.import_module("gan_course.lab.biggan"), "CLAIMS", [])
    with pytest.raises(ValueError, match="no CLAIMS yet"):
        over.chapter_claims("08_biggan")
    for seed, (minimax, nonsat) in enumerate([(8, 5), (6, 7), (8, 3)]):
        path = over.seed_dir("01_gan", seed, tmp_path) / "results" / "01_gan.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"toy_modes_minimax": [minimax], "toy_modes_nonsaturating": nonsat,
                                    "dataset": "glyphs", "_recorded": f"day {seed}", "_commit": "abc1234"}))
    report = over.check_over_seeds("01_gan", [0, 1, 2, 3], root=tmp_path)
    assert report["seeds"] == [0, 1, 2] and "no results file" in report["runs"][3]
    assert report["quantities"] == {"toy_modes_minimax": [8, 6, 8], "toy_modes_nonsaturating": [5, 7, 3]}
    modes = next(r for r in report["claims"] if r["name"] == "nonsaturating_drops_modes")
    assert modes["held"] is True and modes["verdict"] == "yes (2/3 seeds)"
    assert (tmp_path / "results" / "01_gan.seeds.json").exists()
    (tmp_path / "results" / "01_gan.json").write_text(json.dumps({"wall_time_s": 1.0}))
    run = _benchmarks_module("run")
    text = run.write_table(run.collect(results_dir=tmp_path / "results"), tmp_path / "RESULTS.md")
    assert "### 01_gan: claims over seeds" in text and "yes (2/3 seeds)" in text and "seed 1: day 1, code abc1234" in text


@pytest.mark.slow
def test_a_seed_run_builds_into_its_own_directory(tmp_path):
    import nbformat

    over = _benchmarks_module("claims")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("SMOKE = False\nSEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from gan_course import paths\npaths.record_result('99_demo', seed_seen=SEED)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    assert over.run_seed(path, 7, tmp_path / "seed7") == "ok"
    assert json.loads((tmp_path / "seed7" / "results" / "99_demo.json").read_text())["seed_seen"] == 7
    assert os.environ.get("GAN_COURSE_BUILD") != str(tmp_path / "seed7")     # restored afterwards


def test_compare_commits_cuts_each_chapter_after_its_throughput_cell(tmp_path):
    compare = _benchmarks_module("compare_commits")
    for path in sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb")) + sorted((ROOT / "notebooks").glob("10_*.ipynb")):
        cut = nbformat.read(compare.truncated(path, tmp_path / path.name), as_version=4)
        assert compare.THROUGHPUT_CELL.search(cut.cells[-2].source), path.name
        assert cut.cells[-1].source == compare.REPORT
        assert not any(compare.THROUGHPUT_CELL.search(c.source) for c in cut.cells[:-2] if c.cell_type == "code")
        assert "for " in "".join(c.source for c in cut.cells[:-2]), path.name      # the training loop is kept
    with pytest.raises(SystemExit, match="no cell computing"):
        compare.truncated(ROOT / "notebooks" / "00_measuring_gans.ipynb", tmp_path / "00.ipynb")
    assert compare.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "values": [3.0, 1.0, 2.0]}
