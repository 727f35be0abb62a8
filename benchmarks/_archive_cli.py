"""The command-line stage of ``bench_archive.py``: simulate, label init, a labeling round.

Each step runs in a fresh process behind a bare launcher, which records its
peak RSS (``ru_maxrss`` from ``wait4``); :func:`run_measured` returns it
with the wall time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from _archive import remove
from _timing import timed

__all__ = ["run_measured", "label_round_worker", "bench_cli"]

REPO = Path(__file__).resolve().parents[1]


# A bare launcher between this process and the measured one: a child's ru_maxrss
# starts from the RSS of the process that forked it (Linux keeps the high-water mark
# across exec), which is large here and small in a bare interpreter.
_LAUNCHER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd, log):
    """Run ``cmd`` in a fresh process: wall seconds and its peak RSS (bytes)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
    }
    peak = Path(f"{log}.peak_rss")
    with open(log, "w") as out:
        seconds, done = timed(
            lambda: subprocess.run(
                [sys.executable, "-c", _LAUNCHER, peak, *map(str, cmd)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd[2:5]))} failed ({done.returncode}); see {log}")
    return {"seconds": seconds, "peak_rss": int(peak.read_text())}


def label_round_worker(project_dir, csv_path, simulation):
    """A rater labels the cold-start batch (truth from the CSV), then one round is trained.

    ``simulation``: JSON of settings (``n_mc_samples``, ``training``) that
    ``skal-cxr label init`` does not take, set on the project here.
    """
    import csv

    from skal_cxr.labeling import open_project

    with open(csv_path, newline="") as f:
        truth = {row["filename"]: row["label"] for row in csv.DictReader(f)}
    from skal_cxr.labeling._settings import round_config

    project = open_project(project_dir)
    engine = project.config["engine"]  # the round engine's settings, for this process only
    for key, value in json.loads(simulation).items():
        engine[key] = {**engine[key], **value} if isinstance(value, dict) else value
    project.round_config = round_config(project.config)
    project.add_rater("oracle")
    relpath = {i: rel for i, rel, _, _ in project.image_table()}
    while (nxt := project.next_image("oracle"))["image_id"] is not None:
        project.submit_label("oracle", nxt["image_id"], truth[relpath[nxt["image_id"]]])
    seconds, r = timed(project.train_round)
    rnd = project.rounds()[r]
    print(
        json.dumps(
            {
                "round": r,
                "n_labeled": rnd["n_labeled"],
                "n_queried": rnd["n_queried"],
                "fit_time": rnd["fit_time"],
                "query_time": rnd["query_time"],
                "train_round_s": seconds,
            }
        )
    )


def bench_cli(paths, labels, cache, args, script):
    """``skal-cxr simulate``, ``label init`` and a labeling round on the whole folder."""
    import csv
    import shutil

    from skal_cxr.datasets import PHANTOM_CLASS_NAMES

    classes = list(PHANTOM_CLASS_NAMES[3])
    folder, work = paths[0].parent, args.work / "cli"
    remove(work)
    work.mkdir(parents=True)
    csv_path = work / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(
            [("filename", "label"), *((p.name, classes[c]) for p, c in zip(paths, labels))]
        )
    size = 10 if args.tiny else 40
    fast = ["--min-train-steps", "2", "--max-epochs", "1"] if args.tiny else []
    label_sim = {
        "n_mc_samples": args.T,
        **({"training": {"min_train_steps": 2, "max_epochs": 1}} if args.tiny else {}),
    }
    cli = [sys.executable, "-m", "skal_cxr.cli"]
    steps = [
        (
            f"skal-cxr simulate: bald, 1 seed, {size} + 2 x {size} labels, --pool-size "
            f"{args.cli_pool_size}, T = {args.T}",
            [
                *cli,
                "simulate",
                "--csv",
                csv_path,
                "--image-dir",
                folder,
                "--cache-dir",
                cache.cache_dir,
                "--image-size",
                "64",
                "--classes",
                ",".join(classes),
                "--strategies",
                "bald",
                "--seeds",
                "1",
                "--n-initial",
                size,
                "--query-size",
                size,
                "--budget",
                3 * size,
                "--pool-size",
                args.cli_pool_size,
                "--n-mc-samples",
                args.T,
                "--no-baseline",
                "--n-jobs",
                "1",
                "--torch-threads",
                args.threads,
                "--device",
                "cpu",
                *fast,
                "--output",
                work / "simulate",
                "--quiet",
            ],
        ),
        (
            "skal-cxr label init (image cache copied from the build above)",
            [
                *cli,
                "label",
                "init",
                work / "project",
                "--image-dir",
                folder,
                "--csv",
                csv_path,
                "--classes",
                ",".join(classes),
                "--image-size",
                "64",
                "--query-size",
                size,
                "--reserve-size",
                "0",
                "--seed",
                "0",
            ],
        ),
        (
            f"labeling round 1: train on {size}, score the whole pool (mean_std, T = {args.T})",
            [
                sys.executable,
                script,
                "--_label_round",
                work / "project",
                csv_path,
                json.dumps(label_sim),
            ],
        ),
    ]
    # the project's cache is the folder's cache (same files, same order): init checks
    # it instead of decoding the folder again (that build is measured above)
    shutil.copytree(cache.cache_dir, work / "project" / "cache" / "images-64x64")
    rows = []
    for k, (what, cmd) in enumerate(steps):
        log = work / f"step-{k}.log"
        rows.append({"what": what, **run_measured(cmd, log)})
        if "--_label_round" in map(str, cmd):
            rows[-1].update(json.loads(log.read_text().strip().splitlines()[-1]))
    return rows
