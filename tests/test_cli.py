"""Tests of the skal-cxr console script: parsing, help, error paths, a tiny run."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skal_cxr.cli import build_parser, main
from skal_cxr.exceptions import DataError

TINY_ARGS = [
    "--n-phantoms",
    "200",
    "--phantom-size",
    "16",
    "--strategies",
    "random,margin",
    "--seeds",
    "2",
    "--n-initial",
    "10",
    "--query-size",
    "10",
    "--budget",
    "20",
    "--n-mc-samples",
    "3",
    "--width",
    "4",
    "--n-blocks",
    "2",
    "--device",
    "cpu",
    "--min-train-steps",
    "1",
    "--max-epochs",
    "1",
    "--n-jobs",
    "1",
    "--model",
    "cnn",
]


def test_help_is_readable(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--strategies",
        "--budget",
        "--scheduler",
        "--n-jobs",
        "--quiet",
        "resume",
        "examples:",
    ):
        assert text in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "report" in capsys.readouterr().out


def test_parsing_of_lists_and_budgets():
    parser = build_parser()
    args = parser.parse_args(
        ["simulate", "--seeds", "3", "--budget", "0.2", "--strategies", "random, bald"]
    )
    assert args.seeds == 3 and args.budget == 0.2 and args.strategies == ["random", "bald"]
    args = parser.parse_args(["simulate", "--seeds", "4,7", "--budget", "300"])
    assert args.seeds == [4, 7] and args.budget == 300 and isinstance(args.budget, int)
    args = parser.parse_args(["report", "dir", "--targets", "0.9,1"])
    assert args.targets == [0.9, 1.0] and args.metric == "auroc"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "--seeds", "a,b"], "comma-separated integers"),
        (["simulate", "--budget", "lots"], "count or a fraction"),
        (["simulate", "--class-weight", "auto"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_argparse_errors_exit_2_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "extra, message, code",
    [
        (["--strategies", "random,nope"], "unknown strategies", 2),
        (["--budget", "5"], "smaller than the initial", 2),
        (["--n-initial", "0"], "n_initial", 2),
        (["--dropout", "1.5"], "dropout", 2),
        (["--csv", "x.csv"], "--csv and --image-dir go together", 2),
        (["--n-jobs", "0"], "n_jobs", 2),
        (["--data", "/no/such/dir/pneumoniamnist.npz"], "cannot read MedMNIST", 1),
        (["--metric", "nope"], "unknown metric 'nope'", 2),
        (["--metric", "recall_pneumonia"], "unknown metric", 2),  # phantom classes here
        (["--pool-size", "5"], "pool_size (5) is smaller than query_size (10)", 2),
        (["--lr", "inf"], "lr must be a finite positive", 2),
        (["--lr", "nan"], "lr must be a finite positive", 2),
        (["--width", "0"], "'module__width' parameter of MCDropoutCNN must be", 2),
        (["--n-blocks", "-1"], "'module__n_blocks' parameter of MCDropoutCNN must be", 2),
        (["--width", "4096", "--n-blocks", "6"], "parameters", 2),
        (["--device", "tpu"], "device must be", 2),
    ],
)
def test_user_errors_are_one_line(extra, message, code, tmp_path, capsys, no_training):
    tiny = TINY_ARGS[4:] if "--data" in extra else TINY_ARGS  # no phantom sizes then
    assert main(["simulate", "--output", str(tmp_path / "o"), *tiny, *extra]) == code
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # refused before the folder was touched


@pytest.fixture
def no_training(monkeypatch):
    """Any training started makes the test fail: settings are checked before it."""
    from skal_cxr.simulation import _simulate

    def run_task(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(_simulate, "run_task", run_task)


def test_budget_inf_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--budget", "inf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "count or a fraction, got 'inf'" in err and "Traceback" not in err


def test_cuda_without_a_gpu_is_refused(tmp_path, capsys, monkeypatch, no_training):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        assert main(["simulate", "--output", str(tmp_path), *TINY_ARGS, "--device", device]) == 2
        err = capsys.readouterr().err
        assert "no CUDA GPU is visible" in err and err.count("\n") == 1


def test_scheduler_without_dask_is_refused(tmp_path, capsys, monkeypatch, no_training):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    assert (
        main(
            [
                "simulate",
                "--output",
                str(tmp_path / "o"),
                *TINY_ARGS,
                "--scheduler",
                "tcp://127.0.0.1:8786",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "dask[distributed]" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "address, message",
    [
        ("tcp://127.0.0.1:1", "score_scheduler 'tcp://127.0.0.1:1': no Dask scheduler answers"),
        ("127.0.0.1", "missing port number"),
        (None, "dask[distributed]"),
    ],
)
def test_score_scheduler_is_checked_before_training(
    address, message, tmp_path, capsys, monkeypatch, no_training
):
    import sys

    from skal_cxr import _dask

    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", 0.5)
    if address is None:
        monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    assert (
        main(
            [
                "simulate",
                "--output",
                str(tmp_path / "o"),
                *TINY_ARGS,
                "--score-scheduler",
                address or "tcp://127.0.0.1:8786",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_score_scheduler_scores_on_dask_with_the_same_records(tmp_path, capsys, monkeypatch):
    """--score-scheduler (MCDropoutCNN(scheduler=)) changes where, not what, is scored."""
    distributed = pytest.importorskip("distributed")
    from skal_cxr import _dask
    from skal_cxr.simulation import read_records
    from skal_cxr.strategies._base import QueryContext

    monkeypatch.setattr(QueryContext, "chunk_size", 16)  # chunk the tiny pool (130 images)
    calls = []
    reduce_on_dask = _dask.reduce_on_dask
    monkeypatch.setattr(
        _dask, "reduce_on_dask", lambda *a, **k: calls.append(len(a[1])) or reduce_on_dask(*a, **k)
    )
    argv = [*TINY_ARGS, "--strategies", "bald", "--seeds", "1", "--no-baseline", "--quiet"]
    assert main(["simulate", "--output", str(tmp_path / "here"), *argv]) == 0
    assert calls == []
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=":0",
    ) as cluster:
        assert (
            main(
                [
                    "simulate",
                    "--output",
                    str(tmp_path / "dask"),
                    *argv,
                    "--score-scheduler",
                    cluster.scheduler_address,
                ]
            )
            == 0
        ), capsys.readouterr().err
    assert calls == [120]  # one query, scored on the cluster: 130 - 10 labeled
    here, there = (read_records(tmp_path / d) for d in ("here", "dask"))

    def untimed(records):
        return [{k: v for k, v in r.items() if not k.endswith("_time")} for r in records]

    assert len(here) == 2 and untimed(here) == untimed(there)
    config = json.loads((tmp_path / "dask" / "config.json").read_text())["config"]
    assert "scheduler" not in config["estimator"]  # where scoring ran is not configuration


@pytest.mark.parametrize(
    "labels, message, code",
    [
        (np.array([[0, 1], [1, 0], [1, 1], [0, 0]] * 5), "multi-label", 2),
        (np.array([0, 1, -1, 1] * 5), ">= 0", 2),
        (np.array([0.0, 1.5, 1.0, 0.0] * 5), "integer class codes", 1),
        (np.array([0.0, np.nan, 1.0, 0.0] * 5), "integer class codes", 1),
    ],
)
def test_unsuitable_npz_labels_are_refused(labels, message, code, tmp_path, capsys, no_training):
    images = np.zeros((len(labels), 8, 8), dtype=np.uint8)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    np.savez(tmp_path / "odd.npz", **arrays)
    assert (
        main(
            [
                "simulate",
                "--output",
                str(tmp_path / "o"),
                *TINY_ARGS[4:],
                "--data",
                str(tmp_path / "odd.npz"),
            ]
        )
        == code
    )
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err and err.count("\n") == 1


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and "config.json" in err
    (tmp_path / "config.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 1
    assert "skal-cxr: error:" in capsys.readouterr().err


@pytest.mark.slow
def test_simulate_then_report(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["simulate", "--output", str(out), *TINY_ARGS]) == 0
    captured = capsys.readouterr()
    assert "Report:" in captured.out and "margin" in captured.out
    assert "rounds" in captured.err  # the progress bars
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["strategies"] == ["random", "margin"]
    assert meta["config"]["seeds"] == [0, 1]
    assert meta["config"]["training"] == {
        "min_train_steps": 1,
        "max_epochs": 1,
        "lr_schedule": "cosine",
    }
    for name in ("report.md", "summary.csv", "learning_curves.png"):
        assert (out / name).is_file()
    # same command: resumes (nothing to do), quietly
    assert main(["simulate", "--output", str(out), *TINY_ARGS, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    # a duplicated round and a stray file: said once each, set aside, nothing lost
    path = out / "records" / "margin-seed1.jsonl"
    path.write_bytes(path.read_bytes() * 2)
    (out / "records" / "notes.jsonl").write_text("{}\n")
    assert main(["simulate", "--output", str(out), *TINY_ARGS, "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "skal-cxr: warning: margin-seed1.jsonl line 3: round 0 again. Set aside in "
        "margin-seed1.jsonl.rejected.",
        "skal-cxr: warning: margin-seed1.jsonl line 4: round 1 again. Set aside in "
        "margin-seed1.jsonl.rejected.",
        f"skal-cxr: warning: {out / 'records' / 'notes.jsonl'} is not a record file "
        "of skal-cxr (name not <strategy>-seed<N>.jsonl); ignored.",
    ]
    # another configuration in the same folder: refused, then overwritten
    assert main(["simulate", "--output", str(out), *TINY_ARGS, "--query-size", "5"]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert (
        main(
            ["simulate", "--output", str(out), *TINY_ARGS, "--query-size", "5", "--overwrite", "-q"]
        )
        == 0
    )
    assert json.loads((out / "config.json").read_text())["resolved"]["schedule"] == [10, 15, 20]
    assert sorted(p.name for p in (out / "records").iterdir() if "margin" not in p.name) == [
        "baseline-seed0.jsonl",
        "baseline-seed1.jsonl",
        "notes.jsonl",
        "random-seed0.jsonl",
        "random-seed1.jsonl",
    ]  # the stray file is not ours: kept
    assert not (out / "records" / "margin-seed1.jsonl.rejected").exists()
    assert main(["report", str(out), "--metric", "balanced_accuracy_op", "-q"]) == 0
    assert main(["report", str(out), "--metric", "nope"]) == 1
    assert "unknown metric" in capsys.readouterr().err
    assert np.isfinite(float(open(out / "summary.csv").read().splitlines()[1].split(",")[2]))


# -- data and estimator options ------------------------------------------------
def _rater_folder(tmp_path):
    """30 tiny PNGs rated by two raters; 10 are ties between ``none`` and ``mild``."""
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rows = []
    ratings = [("none", "none")] * 10 + [("none", "mild")] * 10 + [("severe", "severe")] * 10
    rng = np.random.default_rng(0)
    for i, (a, b) in enumerate(ratings):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(images / f"{i}.png")
        rows.append(f"{i}.png,{a},{b},{i * 7 % 10 / 2}")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("filename,r1,r2,score\n" + "\n".join(rows) + "\n")
    return ["--csv", str(csv_path), "--image-dir", str(images), "--image-size", "8"]


def _data_of(argv):
    from skal_cxr.cli import _data_spec
    from skal_cxr.simulation import load_simulation_data
    from skal_cxr.simulation._config import resolve_data_spec

    return load_simulation_data(
        resolve_data_spec(_data_spec(build_parser().parse_args(["simulate", *argv])))
    )


def test_classes_give_the_ordinal_order_and_ties_go_to_the_more_severe(tmp_path):
    folder = _rater_folder(tmp_path)
    data = _data_of([*folder, "--label-columns", "r1,r2", "--classes", "none,mild,severe"])
    assert data.class_names == ["none", "mild", "severe"] and data.ordinal
    counts = np.bincount(np.concatenate([data.y_pool, data.y_val, data.y_test]), minlength=3)
    assert counts.tolist() == [10, 10, 10]  # the ten (none, mild) ties are mild
    # without --classes, "none" reads as a missing label: the error says to give the classes
    with pytest.raises(Exception, match=r"missing label 'none'.*give classes"):
        _data_of([*folder, "--label-columns", "r1,r2"])
    # and text labels without --classes are ordered alphabetically: a one-line warning says so
    csv = Path(folder[1])
    csv.write_text(csv.read_text().replace("none", "zero"))
    # in that order the ten (zero, mild) ties go to the later label, zero, so no image is
    # left in class mild: the split refuses, after the warning
    with pytest.warns(UserWarning, match=r"alphabetically \(mild, severe, zero\).*--classes"):
        with pytest.raises(
            DataError, match=r"test split \(8 images\) has no image of .*\['mild'\]"
        ):
            _data_of([*folder, "--label-columns", "r1,r2"])


def test_classes_reach_the_run_and_its_report(tmp_path, capsys):
    folder = _rater_folder(tmp_path)
    out = tmp_path / "o"
    argv = [
        "simulate",
        "--output",
        str(out),
        *folder,
        "--label-columns",
        "r1,r2",
        "--classes",
        "none,mild,severe",
        "--consensus",
        "max",
        *TINY_ARGS[4:],
        "--budget",
        "15",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["data"]["classes"] == ["none", "mild", "severe"]
    assert meta["config"]["data"]["consensus"] == "max"
    assert meta["resolved"]["classes"] == ["none", "mild", "severe"]
    assert meta["resolved"]["ordinal"] is True


def test_score_column_and_bins(tmp_path):
    folder = _rater_folder(tmp_path)
    data = _data_of(
        [
            *folder,
            "--score-column",
            "score",
            "--bins",
            "1.5,3",
            "--classes",
            "low,mid,high",
            "--on-error",
            "skip",
        ]
    )
    assert data.class_names == ["low", "mid", "high"]
    scores = np.array([i * 7 % 10 / 2 for i in range(30)])
    expected = np.bincount(np.digitize(scores, [1.5, 3]), minlength=3)
    got = np.bincount(np.concatenate([data.y_pool, data.y_val, data.y_test]), minlength=3)
    assert got.tolist() == expected.tolist()


def test_every_image_folder_option_is_reachable_from_the_command_line(tmp_path):
    """Walk load_image_folder's signature and the parser together."""
    import inspect

    from skal_cxr.cli import _data_spec
    from skal_cxr.datasets import load_image_folder
    from skal_cxr.simulation._config import DATA_DEFAULTS

    parser = build_parser()
    simulate_parser = parser._subparsers._group_actions[0].choices["simulate"]
    options = {o for a in simulate_parser._actions for o in a.option_strings}
    internal = {"n_jobs", "verbose"}  # how to read, not what to read
    renamed = {
        "csv_path": "--csv",
        "image_dir": "--image-dir",
        "encoding": "--csv-encoding",
        "delimiter": "--csv-delimiter",
    }
    values = {
        "label_columns": "a,b",
        "bins": "1,2",
        "classes": "x,y,z",
        "image_size": "8",
        "consensus": "mean",
        "on_error": "skip",
        "duplicates": "keep_first",
        "delimiter": ";",
        "verify_cache": None,
    }  # None: a flag
    for name in inspect.signature(load_image_folder).parameters:
        if name in internal:
            continue
        option = renamed.get(name, "--" + name.replace("_", "-"))
        assert option in options, f"load_image_folder({name}=...) has no {option}"
        if name in ("csv_path", "image_dir"):
            continue
        assert name in DATA_DEFAULTS["folder"], name
        argv = ["simulate", "--csv", "c.csv", "--image-dir", "d", option]
        argv += [] if values.get(name, "col") is None else [values.get(name, "col")]
        spec = _data_spec(parser.parse_args(argv))
        assert name in spec, f"{option} does not reach the data specification"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--classes", "a,b"], "--classes apply to image folders"),
        (["--consensus", "max", "--bins", "1"], "--bins, --consensus apply to image folders"),
        (["--pretrained", "w.pt"], "--pretrained needs --backbone resnet18 or densenet121"),
        (["--backbone", "resnet18", "--pretrained", "/no/such/w.pt"], "no such weights file"),
        (["--backbone", "resnet18", "--pretrained", "imagenet"], "not in the local torch cache"),
        (["--budget", "100000"], "larger than the pool"),
        (["--data", "pneumoniamnist"], "need --data phantoms"),
        (["--max-pixels", "0"], "--max-pixels must be a positive number of pixels"),
    ],
)
def test_options_checked_before_training(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))
    import skal_cxr.simulation._runner as runner

    monkeypatch.setattr(runner, "run_task", lambda *a, **k: pytest.fail("training started"))
    assert main(["simulate", "--output", str(tmp_path / "o"), *TINY_ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skal-cxr: error:") and message in err, err
    assert err.count("\n") == 1


def test_backbone_and_pretrained_reach_the_estimator(tmp_path):
    import torch

    from skal_cxr.cli import _backbone_params
    from skal_cxr.networks import CXRNet, cached_imagenet_weights

    weights = tmp_path / "r18.pt"
    torch.save(CXRNet(backbone="resnet18").state_dict(), weights)
    args = build_parser().parse_args(
        ["simulate", "--backbone", "resnet18", "--pretrained", str(weights)]
    )
    assert _backbone_params(args) == {
        "module__backbone": "resnet18",
        "module__pretrained": str(weights),
    }
    args = build_parser().parse_args(["simulate", "--backbone", "cnn"])
    assert _backbone_params(args) == {"module__backbone": "small"}
    assert cached_imagenet_weights("resnet18").name.startswith("resnet18-")


def test_phantom_raters_reach_the_report(tmp_path, capsys):
    out = tmp_path / "o"
    argv = [
        "simulate",
        "--output",
        str(out),
        *TINY_ARGS,
        "--n-raters",
        "4",
        "--seeds",
        "1",
        "--strategies",
        "random",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["data"]["n_raters"] == 4
    agreement = meta["resolved"]["agreement"]
    assert agreement["n_raters"] == 4 and 0 < agreement["fleiss_kappa"] < 1
    assert "raters: 4 per image, Fleiss' kappa" in (out / "report.md").read_text()


def test_cache_dir_reaches_the_folder_data_spec():
    from skal_cxr.cli import _data_spec

    args = build_parser().parse_args(
        ["simulate", "--csv", "l.csv", "--image-dir", "img", "--cache-dir", "cache"]
    )
    assert _data_spec(args) == {
        "source": "folder",
        "csv": "l.csv",
        "image_dir": "img",
        "cache_dir": "cache",
    }


def test_help_shows_the_configurations_defaults(monkeypatch, capsys):
    """The defaults in ``--help`` come from ``DEFAULT_CONFIG``, not from the help text."""
    from skal_cxr.cli import build_parser
    from skal_cxr.simulation._config import DEFAULT_CONFIG

    monkeypatch.setitem(DEFAULT_CONFIG, "n_initial", 41)
    monkeypatch.setitem(
        DEFAULT_CONFIG, "training", {**DEFAULT_CONFIG["training"], "min_train_steps": 151}
    )
    sim = build_parser()._subparsers._group_actions[0].choices["simulate"]
    text = " ".join(sim.format_help().split())
    assert "initial labeled images (41)" in text and "optimizer steps per fit (151)" in text
    assert "(40)" not in text.replace("per round (40)", "")


def test_max_pixels_reaches_the_decoders_without_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SKAL_CXR_MAX_PIXELS", raising=False)
    import skal_cxr.simulation._runner as runner

    monkeypatch.setattr(runner, "run_task", lambda *a, **k: pytest.fail("training started"))
    folder = _rater_folder(tmp_path)  # 8 x 8 images: 64 pixels
    argv = ["simulate", "--output", str(tmp_path / "o"), *folder, "--label-columns", "r1,r2"]
    argv += ["--classes", "none,mild,severe"]
    assert main([*argv, "--max-pixels", "63"]) == 1  # a data error
    err = capsys.readouterr().err
    assert "8 x 8 pixels is more than the limit of 63 pixels" in err, err
    assert "SKAL_CXR_MAX_PIXELS" not in os.environ  # the limit went as an argument
