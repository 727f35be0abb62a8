"""Run every gallery example in fast mode (SKAL_CXR_FAST=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


def test_examples_are_gallery_scripts():
    assert len(EXAMPLES) >= 4
    for path in EXAMPLES:
        text = path.read_text()
        assert text.startswith('"""\n===') and "# %%" in text, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_fast(path, tmp_path):
    done = _run(path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


def _run(path, tmp_path, **env):
    env = {
        **os.environ,
        "SKAL_CXR_FAST": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "TMPDIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_strategy_comparison_falls_back_without_pneumoniamnist(tmp_path):
    path = next(p for p in EXAMPLES if p.stem == "plot_strategy_comparison")
    done = _run(path, tmp_path, SKAL_CXR_DATA=str(tmp_path / "empty"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not found: using two-class phantoms instead" in done.stdout
