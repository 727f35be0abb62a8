"""The server's import path: ``skal-cxr label serve`` answers without importing torch.

Training runs in the worker process, which imports the round engine (torch,
skorch) itself; the server imports only what answering a request needs, so
that it answers within moments of starting (timed in
``benchmarks/bench_labeling.py --startup``, never here).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[3]

#: ``skal-cxr label serve PROJECT`` in a fresh interpreter, uvicorn's loop replaced by
#: a few requests: every import up to answering them happens as in a real start.
SERVE_PATH = r"""
import json, sys
import uvicorn
from fastapi.testclient import TestClient

codes = []

def answer(app, **options):  # in place of uvicorn.run: serve a few requests, then return
    auth = {"Authorization": "Bearer " + sys.argv[2], "Host": "127.0.0.1"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for url in ("/api/health", "/api/me", "/api/status", "/api/next", "/"):
            codes.append(client.get(url, headers=auth).status_code)

uvicorn.run = answer
from skal_cxr.cli import main

status = main(["label", "serve", sys.argv[1], "--port", "8799"])
heavy = sorted(m for m in ("torch", "skorch", "torchvision") if m in sys.modules)
print(json.dumps({"status": status, "codes": codes, "heavy": heavy}))
"""


def _serve_path(project, token):
    out = subprocess.run(
        [sys.executable, "-c", SERVE_PATH, str(project.path), token],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serving_a_project_imports_neither_torch_nor_skorch(make_project):
    project = make_project()
    token = project.add_rater("alice")
    result = _serve_path(project, token)
    assert result["status"] == 0 and result["codes"] == [200] * 5
    assert result["heavy"] == []


def test_the_package_imports_without_torch_and_its_names_still_load():
    code = (
        "import sys, skal_cxr, skal_cxr.labeling, skal_cxr.engine, skal_cxr.datasets\n"
        "print(sorted(m for m in ('torch', 'skorch') if m in sys.modules))\n"
        "from skal_cxr import MCDropoutCNN, strategies, simulate\n"
        "from skal_cxr.labeling import COLD_STARTS, LabelingProject, NotFound\n"
        "from skal_cxr.engine import ActiveLoop\n"
        "print(MCDropoutCNN.__module__, strategies.__name__, simulate.__module__)\n"
        "print(set(skal_cxr.__all__) <= set(dir(skal_cxr)), COLD_STARTS[0])\n"
        "print(set(skal_cxr.labeling.__all__) <= set(dir(skal_cxr.labeling)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:4] == [
        "[]",
        "skal_cxr.models skal_cxr.strategies skal_cxr.simulation._simulate",
        "True random",
        "True",
    ]


def test_an_unknown_name_is_still_an_attribute_error():
    import skal_cxr
    import skal_cxr.labeling

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        skal_cxr.nothing  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        skal_cxr.labeling.nothing  # noqa: B018
