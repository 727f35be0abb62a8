"""The pre-declared confirmatory study (docs/benchmarks/confirmatory_study.rst).

Arms A-G on PneumoniaMNIST, its imbalanced variant and the phantoms at 28
and 64 pixels, seeds 1000-1019, checkpoints 10, 20, ..., 100 then queries
of 50 to 300 labels; the full-data references are the arms ``full_cnn``
and ``full_view``. Each (data set, seed, arm) is a JSON record under
``DIR/records``, written when it is done: rerunning the command skips the
records already there, and a folder made with other settings
(``DIR/run.json``) is refused.

Usage::

    python -m benchmarks.bench_confirmatory --pilot --output DIR
    python -m benchmarks.bench_confirmatory --output DIR --encoder-epochs E --encoder-width W
    python -m benchmarks.bench_confirmatory --analyze DIR     # tables and tests only

``--pilot`` runs the declared pilot (seeds 900-904, PneumoniaMNIST and the
64-pixel phantoms, arm A only): the encoder grid epochs {5, 10} x width
{16, 32} under ``DIR/grid/<setting>``, the choice (highest mean AUROC at 20
labels, ties within 0.005 by lower encoder CPU time), then the
fine-tuning check of the chosen setting under ``DIR/fine_tune`` (adopted
if it raises arm A's mean AULC over 10-300 by at least 0.005); the
figures go to ``DIR/pilot.json``. ``--smoke`` is a tiny setting for tests.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _confirmatory import ARMS, DATASETS, SMOKE, Settings, load_study, run_study  # noqa: E402
from _confirmatory_report import (  # noqa: E402
    FINE_TUNE_GAIN,
    by_arm,
    choose_setting,
    criteria,
    families,
    pilot_summary,
    pilot_tables,
    render,
    secondary,
)
from _records import check_run_config  # noqa: E402

CONFIRMATORY_SEEDS = list(range(1000, 1020))
PILOT_SEEDS = list(range(900, 905))
PILOT_DATASETS = ["pneumoniamnist", "phantoms64"]
PILOT_GRID = [(e, w) for e in (5, 10) for w in (16, 32)]
FULL = ["full_cnn", "full_view"]


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _config(settings):
    """The settings a records folder is bound to (``DIR/run.json``).

    Its ``data`` is the study's data sets (a run may do a subset of them);
    ``fine_tune_from`` counts only when fine-tuning.
    """
    config = {"data": ",".join(DATASETS), **vars(settings)}
    if not settings.fine_tune:
        config.pop("fine_tune_from")
    return config


def run(out, datasets, seeds, arms, settings, encoders=None):
    """Check the folder's settings, then run every missing record."""
    Path(out).mkdir(parents=True, exist_ok=True)
    check_run_config(out, _config(settings))
    return run_study(out, datasets, seeds, arms, settings, log=_log, encoders=encoders)


def analyze(out):
    """Print the declared analysis of ``DIR``; write ``DIR/analysis.json``."""
    table = by_arm(load_study(out))
    fams = families(table)
    met = criteria(table, fams)
    sec = secondary(table)
    print("\n".join(render(table, fams, met, sec)))
    result = {"families": fams, "criteria": met, "secondary": sec}
    (Path(out) / "analysis.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def pilot(out, seeds, datasets, base, stage=None):
    """The declared pilot: the encoder grid, the choice, the fine-tuning check.

    ``stage="grid"`` stops after the grid's records of ``seeds`` (so that
    several processes can share the seeds); ``"fine_tune"`` also runs the
    fine-tuning check of ``seeds`` once the grid is complete; ``"summary"``
    runs nothing and prints the grid's figures over the records there so
    far. The figures and choices are written by a run with every pilot seed.
    """
    out = Path(out)
    grid = {replace(base, encoder_epochs=e, encoder_width=w).tag(): (e, w) for e, w in PILOT_GRID}
    if stage == "summary":
        summary = pilot_summary({tag: load_study(out / "grid" / tag) for tag in grid}, datasets)
        print("\n".join(pilot_tables(summary, datasets)))
        return summary
    for seed in seeds:  # whole seeds first, so that a stopped pilot leaves complete seeds
        for tag, (e, w) in grid.items():
            settings = replace(base, encoder_epochs=e, encoder_width=w)
            run(out / "grid" / tag, datasets, [seed], ["A"], settings, out / "encoders")
    if stage == "grid":
        return None
    summary = pilot_summary({tag: load_study(out / "grid" / tag) for tag in grid}, datasets)
    chosen = choose_setting(summary)
    print("\n".join(pilot_tables(summary, datasets)))
    print(f"chosen: {chosen}")
    e, w = grid[chosen]
    tuned = replace(base, encoder_epochs=e, encoder_width=w, fine_tune=True)
    run(out / "fine_tune", datasets, seeds, ["A"], tuned, out / "encoders")
    if stage == "fine_tune":
        return None
    ft = pilot_summary({"ft": load_study(out / "fine_tune")}, datasets)["ft"]
    gain = ft["aulc"] - summary[chosen]["aulc"]
    adopt = bool(gain >= FINE_TUNE_GAIN)
    print(
        f"fine-tuning from 100 labels: AULC 10-300 {ft['aulc']:.4f} vs frozen "
        f"{summary[chosen]['aulc']:.4f} ({gain:+.4f}): {'adopted' if adopt else 'not adopted'}"
    )
    result = {
        "seeds": list(seeds),
        "datasets": datasets,
        "grid": summary,
        "chosen": chosen,
        "fine_tune": ft,
        "fine_tune_gain": gain,
        "fine_tune_adopted": adopt,
    }
    (out / "pilot.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=False, help="records folder")
    parser.add_argument("--pilot", action="store_true", help="the declared pilot (seeds 900-904)")
    parser.add_argument(
        "--stage",
        choices=["grid", "fine_tune", "summary"],
        help="with --pilot: stop after this stage ('summary': run nothing, print the grid)",
    )
    parser.add_argument("--seeds", help="comma-separated seeds or a range FIRST-LAST")
    parser.add_argument("--datasets", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--arms", help="comma-separated, of A-G, full_cnn, full_view")
    parser.add_argument("--encoder-epochs", type=int, default=5)
    parser.add_argument("--encoder-width", type=int, default=16)
    parser.add_argument("--fine-tune", action="store_true", help="fine-tune from 100 labels")
    parser.add_argument("--smoke", action="store_true", help="tiny data and training (tests)")
    parser.add_argument("--analyze", metavar="DIR", help="only analyse the records in DIR")
    args = parser.parse_args(argv)
    if args.analyze:
        return analyze(args.analyze)
    if not args.output:
        parser.error("--output is required")
    base = Settings(**SMOKE) if args.smoke else Settings()
    if args.seeds and "-" in args.seeds:
        first, last = map(int, args.seeds.split("-"))
        seeds = list(range(first, last + 1))
    elif args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = PILOT_SEEDS if args.pilot else CONFIRMATORY_SEEDS
    datasets = args.datasets.split(",") if args.datasets else None
    if args.pilot:
        return pilot(args.output, seeds, datasets or PILOT_DATASETS, base, args.stage)
    settings = replace(
        base,
        encoder_epochs=args.encoder_epochs,
        encoder_width=args.encoder_width,
        fine_tune=args.fine_tune,
    )
    arms = args.arms.split(",") if args.arms else [*ARMS, *FULL]
    unknown = set(arms) - set(ARMS) - set(FULL) | set(datasets or ()) - set(DATASETS)
    if unknown:
        parser.error(f"unknown arms or data sets: {sorted(unknown)}")
    ran = run(args.output, datasets or list(DATASETS), seeds, arms, settings)
    _log(f"{ran} records written")
    return analyze(args.output)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
