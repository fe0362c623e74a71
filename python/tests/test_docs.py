"""docs/python.md runs as written: its Python blocks, in order, in one
namespace, and the tables it shows are what the code prints."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

import medsim as ms
from conftest import ROOT

DOC = ROOT / "docs" / "python.md"


def _blocks(text: str):
    """Each ```python block with the plain ``` block right after it (the
    output the doc shows), or None."""
    pattern = re.compile(r"```python\n(.*?)```\n(?:\n```\n(.*?)```\n)?", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(text)]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The files the doc's examples name: configs/ (the power study cut to
    a few datasets per cell, as its 36,000 bootstraps take minutes), a
    config file study.toml and a Stata file panel.dta."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    power = tmp_path / "configs" / "power_iid.toml"
    text = power.read_text()
    assert "datasets = 1000\n" in text and "replicates = 1000\n" in text
    power.write_text(text.replace("datasets = 1000\n", "datasets = 4\n")
                     .replace("replicates = 1000\n", "replicates = 99\n"))
    shutil.copy(ROOT / "configs" / "paper.toml", tmp_path / "study.toml")
    ms.generate().to_stata(tmp_path / "panel.dta", write_index=False, version=118)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def test_the_walk_through_runs_and_shows_what_it_prints(workdir):
    blocks = _blocks(DOC.read_text())
    assert len(blocks) >= 6, "the walk-through's blocks were not found"
    shown = 0
    namespace: dict = {}
    with pd.option_context("display.width", 250, "display.max_columns", 50):
        for code, output in blocks:
            lines = code.rstrip("\n").split("\n")
            if output is None:
                exec(code, namespace)
                continue
            # The last line is an expression whose value the doc shows.
            exec("\n".join(lines[:-1]), namespace)
            got = str(eval(lines[-1].split("#")[0], namespace))
            strip = lambda s: [line.rstrip() for line in s.strip("\n").split("\n")]
            assert strip(got) == strip(output), f"docs/python.md shows other numbers for:\n{code}"
            shown += 1
    assert shown == 2, "both shown tables were checked"
    assert isinstance(namespace["fit"], ms.Fit)
