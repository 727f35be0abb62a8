"""``skal-cxr label``: init, add-rater, status, export, serve refusals."""

import re

import pytest

from skal_cxr.cli import main
from skal_cxr.labeling import open_project


def test_init_add_rater_status_export(tmp_path, phantom_folder, capsys):
    project = str(tmp_path / "proj")
    assert (
        main(
            [
                "label",
                "init",
                project,
                "--image-dir",
                str(phantom_folder[0]),
                "--classes",
                "normal,moderate,severe",
                "--query-size",
                "4",
                "--labels-per-image",
                "2",
                "--budget",
                "12",
                "--image-size",
                "16",
            ]
        )
        == 0
    )
    assert "60 images" in capsys.readouterr().out
    assert main(["label", "add-rater", project, "alice", "--port", "9000"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"http://127\.0\.0\.1:9000/#token=([\w-]+)", out).group(1)
    opened = open_project(project)
    assert opened.rater_for_token(token) == "alice" and len(token) >= 43
    assert opened.config["labels_per_image"] == 2 and opened.config["budget"] == 12
    assert main(["label", "status", project]) == 0
    out = capsys.readouterr().out
    # a new project trains its view at init and starts with typicality in it
    assert "rater alice: 0 labels" in out and "round 0: typicality" in out
    assert opened.round_config.model == "view" and (opened.path / "view" / "current.json").is_file()
    assert "budget left 8" in out
    assert main(["label", "export", project, "-o", str(tmp_path / "l.csv")]) == 0
    header = (tmp_path / "l.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["filename", "label", "consensus"] and "rater_alice" in header


@pytest.mark.parametrize(
    "given, stored",
    [
        (["--pool-size", "7"], 7),
        (["--pool-size", "all"], None),
        ([], None),  # auto: the 60 images are all scored
    ],
)
def test_init_pool_size(tmp_path, phantom_folder, given, stored):
    project = str(tmp_path / "proj")
    assert (
        main(
            [
                "label",
                "init",
                project,
                "--image-dir",
                str(phantom_folder[0]),
                "--classes",
                "normal,moderate,severe",
                "--query-size",
                "4",
                "--image-size",
                "16",
                *given,
            ]
        )
        == 0
    )
    assert open_project(project).config["engine"]["pool_size"] == stored


def test_init_refuses_a_bad_pool_size(tmp_path, phantom_folder, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "label",
                "init",
                str(tmp_path / "p"),
                "--image-dir",
                str(phantom_folder[0]),
                "--classes",
                "a,b",
                "--pool-size",
                "0",
            ]
        )
    assert "expected auto, all or a positive count" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["label", "init", "{tmp}/p", "--image-dir", "{tmp}/nowhere", "--classes", "a,b"],
            "does not exist",
        ),
        (["label", "init", "{tmp}/p", "--image-dir", "{img}", "--classes", "a"], "two distinct"),
        (["label", "add-rater", "{tmp}", "bob"], "not a labeling project"),
        (["label", "serve", "{proj}", "--host", "0.0.0.0"], "allow-remote"),
        (
            ["label", "serve", "{proj}", "--score-scheduler", "nonsense"],
            "--score-scheduler 'nonsense': no Dask scheduler answers there",
        ),
        (
            [
                "label",
                "init",
                "{tmp}/p",
                "--image-dir",
                "{img}",
                "--classes",
                "a,b",
                "--n-jobs",
                "0",
            ],
            "'n_jobs' parameter of init_project must be",
        ),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, phantom_folder, make_project, capsys, argv, message):
    proj = make_project().path
    argv = [a.format(tmp=tmp_path, img=phantom_folder[0], proj=proj) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err and err.count("\n") == 1


def test_serve_score_scheduler_reaches_the_project(make_project, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    from skal_cxr.labeling.web import _app

    served = []
    monkeypatch.setattr(_app, "serve", lambda project, *a, **k: served.append(project))
    proj = str(make_project().path)
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=":0",
    ) as cluster:
        assert main(["label", "serve", proj, "--score-scheduler", cluster.scheduler_address]) == 0
    assert served[0].score_scheduler == cluster.scheduler_address
    assert main(["label", "serve", proj]) == 0
    assert served[1].score_scheduler is None


def test_add_rater_links_to_where_serve_listens(make_project, capsys):
    project = make_project()
    path = str(project.path)

    def link(*extra):
        assert main(["label", "add-rater", path, *extra]) == 0
        return re.search(r"(\S+)/#token=[\w-]+", capsys.readouterr().out).group(1)

    assert link("a") == "http://127.0.0.1:8765"  # never served: the default
    project.record_serve_address("127.0.0.1", 9123)  # as serve does
    assert link("b") == "http://127.0.0.1:9123"
    assert link("c", "--port", "9000") == "http://127.0.0.1:9000"
    assert link("d", "--url", "https://labels.example.org/") == "https://labels.example.org"
    assert main(["label", "add-rater", path, "e", "--adjudicator"]) == 0
    assert "(adjudicator)" in capsys.readouterr().out
    assert open_project(path).next_adjudication("e")["image_id"] is None  # the role is kept


def test_export_jsonl(make_project, tmp_path, capsys):
    project = make_project()
    project.add_rater("alice")
    image_id = project.next_image("alice")["image_id"]
    project.submit_label("alice", image_id, "normal")
    out = tmp_path / "audit.jsonl"
    assert main(["label", "export", str(project.path), "-o", str(out), "--format", "jsonl"]) == 0
    assert "3 events" in capsys.readouterr().err  # the round, the assignment, the label
    assert out.read_text().count("\n") == 3


def test_init_takes_a_fractional_budget(tmp_path, phantom_folder, capsys):
    """``--budget 0.25`` labels a quarter of the pool, as ``init_project(budget=0.25)`` does."""
    project = str(tmp_path / "proj")
    argv = ["label", "init", project, "--image-dir", str(phantom_folder[0])]
    argv += ["--classes", "normal,moderate,severe", "--query-size", "4", "--image-size", "16"]
    assert main([*argv, "--budget", "0.25"]) == 0, capsys.readouterr().err
    assert open_project(project).config["budget"] == 15  # a quarter of the 60 images
    assert main([*argv[:2], str(tmp_path / "q"), *argv[3:], "--budget", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error: The 'budget' parameter of init_project") and (
        err.count("\n") == 1
    ), err
    assert not (tmp_path / "q").exists()


_SERVE_UNTIL_UVICORN = """
import json, sys
import uvicorn

def run(app, **kwargs):  # where the server would start answering
    heavy = ("sklearn", "scipy", "torch", "torchvision", "skorch", "pandas", "matplotlib")
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)))

uvicorn.run = run
from skal_cxr.cli import main
sys.exit(main(["label", "serve", sys.argv[1], "--port", "8999"]))
"""


def test_serve_imports_no_heavy_library_before_it_answers(make_project):
    """``label serve`` reaches uvicorn without scikit-learn, SciPy or PyTorch (start-up time)."""
    import json
    import subprocess
    import sys

    project = make_project()
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_UNTIL_UVICORN, str(project.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
