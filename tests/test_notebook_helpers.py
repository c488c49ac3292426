"""gan_course.notebook: the set-up call, source display and Markdown tables the chapters use."""

import pytest
import torch

from gan_course.notebook import markdown_table, setup, show_source, show_table, threads


def test_markdown_table_formats_floats_escapes_pipes_and_fills_missing_cells():
    table = markdown_table({"a": {"x": 1.23456, "y": "n|o"}, "b": {"x": 2.0}}, digits=2, first="arm")
    assert table.splitlines() == ["| arm | x | y |", "|---|---|---|", "| a | 1.23 | n\\|o |", "| b | 2.00 |  |"]
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table({})


def test_show_table_returns_what_it_shows(capsys):
    text = show_table({"r": {"c": 0.5}}, title="T")
    assert text.startswith("**T**\n\n|  | c |") and "| r | 0.500 |" in text


def test_setup_seeds_and_sets_threads(capsys):
    device = setup("cpu", seed=3, n_threads=1, smoke=True)
    a = torch.rand(2)
    setup("cpu", seed=3, n_threads=1, quiet=True)
    assert device.type == "cpu" and torch.equal(a, torch.rand(2)) and torch.get_num_threads() == 1
    assert "seed: 3, threads: 1, smoke: True" in capsys.readouterr().out
    with pytest.raises(ValueError, match="positive int"):
        threads(0)
    show_source(markdown_table)
