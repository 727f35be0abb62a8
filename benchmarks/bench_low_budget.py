"""The pre-declared low-budget study (docs/benchmarks.rst, "Low-budget study").

Every arm starts from zero labels. Label-free arms (random, typicality and
schedules starting with it) pick the first 10 labels themselves; the
uncertainty arms (max entropy, mean STD, BALD, BADGE) start from 10
label-free random labels; ``stratified`` draws its first 10 by class (an
oracle, reference only). Each checkpoint retrains the simulation's default
estimator from scratch and records test AUROC, minority AUPRC, balanced
accuracy at the validation operating point, and ECE raw and after
:class:`~skal_cxr.calibration.PriorCorrection` fitted on the val split.

Usage::

    python benchmarks/bench_low_budget.py --arms primary --seeds 10 --out DIR
    python benchmarks/bench_low_budget.py --analyze DIR      # tables and tests only

``--arms primary`` is the primary comparison (default strategy and
label-free random); ``--arms all`` every declared arm, each also with the
self-supervised start (suffix ``+ssl``: a :class:`ContrastiveEncoder`
trained on the pool is typicality's view and the classifier's initial
trunk, ``MCDropoutCNN(encoder_weights=...)``). ``--data`` picks
``pneumoniamnist`` (as shipped), ``imbalanced`` (normal cut to 5 % of the
pool) or ``phantoms``. Records go to ``DIR/records.jsonl`` one checkpoint
per line; rerunning the command skips the (arm, seed) pairs already there,
and a folder holding another run's records (data set, checkpoints,
``--quick``; kept in ``DIR/run.json``) is refused. Without ``--out`` each
data set and ``--max-labels`` gets its own folder under
``benchmarks/results/``.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from skal_cxr import ActiveLearner, MCDropoutCNN
from skal_cxr._atomic import atomic_write
from skal_cxr._random import derived_rng
from skal_cxr.calibration import PriorCorrection
from skal_cxr.callbacks import CosineAnnealing
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.engine import ActiveLoop
from skal_cxr.metrics import classification_metrics, fit_operating_point
from skal_cxr.report import area_under_learning_curve, paired_by_seed, with_holm
from skal_cxr.strategies import (
    STRATEGIES,
    is_label_free,
    label_free_query,
    max_entropy,
    schedule,
    typicality,
)

DEFAULT = "typicality_then_max_entropy"
PRIMARY = [DEFAULT, "random"]
BASE_ARMS = [DEFAULT, "random", "stratified", "max_entropy", "mean_std", "bald", "badge"]
# every arm also with the self-supervised start (encoder view and classifier trunk)
ALL_ARMS = BASE_ARMS + [arm + "+ssl" for arm in BASE_ARMS]
SWITCH = 40  # the default schedule's switch to max entropy


@dataclass
class Data:
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    minority: int
    name: str


def load_data(name, seed=0):
    """The declared data sets; ``imbalanced`` keeps normal at 5 % of the pool."""
    if name == "phantoms":
        from skal_cxr.datasets import make_cxr_phantoms

        X, y = make_cxr_phantoms(3000, image_size=28, n_classes=3, random_state=seed)
        order = np.random.default_rng(seed).permutation(len(y))
        X, y = X[order], y[order]
        a, b = 2100, 2400
        return Data(
            X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:], int(np.argmin(np.bincount(y))), name
        )
    from skal_cxr.datasets import load_pneumoniamnist

    splits = {s: load_pneumoniamnist(s) for s in ("train", "val", "test")}
    X_pool, y_pool = splits["train"]
    if name == "imbalanced":
        rng = np.random.default_rng(12345)  # one fixed pool for every seed and arm
        normal, sick = np.flatnonzero(y_pool == 0), np.flatnonzero(y_pool == 1)
        n_keep = int(round(0.05 / 0.95 * len(sick)))
        keep = np.sort(np.r_[rng.choice(normal, n_keep, replace=False), sick])
        X_pool, y_pool = X_pool[keep], y_pool[keep]
    elif name != "pneumoniamnist":
        raise SystemExit(f"unknown --data {name!r}")
    return Data(X_pool, y_pool, *splits["val"], *splits["test"], minority=0, name=name)


def make_estimator(seed, n_classes, quick=False):
    """The simulation's default estimator (docs/benchmarks.rst, main job)."""
    return MCDropoutCNN(
        classes=np.arange(n_classes),
        class_weight="balanced",
        n_mc_samples=20,
        random_state=seed,
        max_epochs=1 if quick else 5,
        min_train_steps=5 if quick else 150,
        callbacks=[("cosine", CosineAnnealing())],
        lr=1e-3,
        batch_size=32,
        module__width=16,
        module__n_blocks=3,
        module__dropout=0.5,
        device="cpu",
    )


def arm_strategy(arm, encoder=None):
    """Query strategy of an arm (the ``+ssl`` arms use the encoder's view)."""
    base = arm.split("+")[0]
    if base == DEFAULT:
        first = typicality if encoder is None else partial(typicality, embedding=encoder)
        return schedule([(first, SWITCH), (max_entropy, None)])
    return STRATEGIES["random" if base == "stratified" else base]


def first_labels(arm, strategy, data, n, seed):
    """The study's declared first ``n`` labels: label-free strategies choose; others random.

    Label-free strategies pick without any learner
    (:func:`skal_cxr.strategies.label_free_query`); ``stratified``
    (the oracle) draws a per-class quota, the others ``n`` at random, as
    the study declared (seeded by ``derived_rng(seed, 7)``).
    """
    rng = derived_rng(seed, 7)
    if arm.startswith("stratified"):  # the oracle: uses the labels
        classes = np.unique(data.y_pool)
        quota = np.full(len(classes), n // len(classes))
        quota[: n % len(classes)] += 1
        return np.concatenate(
            [
                rng.choice(np.flatnonzero(data.y_pool == c), q, replace=False)
                for c, q in zip(classes, quota)
            ]
        )
    if is_label_free(strategy):
        return label_free_query(strategy, data.X_pool, n, random_state=rng)[0]
    return rng.choice(len(data.y_pool), n, replace=False)


def evaluate(model, data):
    """Test metrics of a fitted model (operating point and calibration from val)."""
    p_val, p_test = model.predict_proba(data.X_val), model.predict_proba(data.X_test)
    op = fit_operating_point(data.y_val, p_val)
    m = classification_metrics(data.y_test, p_test, operating_point=op)
    corrected = PriorCorrection().fit(p_val, data.y_val).transform(p_test)
    tempered = PriorCorrection(method="temperature").fit(p_val, data.y_val).transform(p_test)
    return {
        "auroc": m["auroc"],
        "balanced_accuracy_op": m["balanced_accuracy_op"],
        "mae_macro": m["mae_macro"],
        "ece": m["ece"],
        "ece_corrected": classification_metrics(data.y_test, corrected)["ece"],
        "ece_temperature": classification_metrics(data.y_test, tempered)["ece"],
        "auprc_minority": float(
            average_precision_score(data.y_test == data.minority, p_test[:, data.minority])
        ),
    }


def checkpoints(budget, step=10, after=50, max_labels=None):
    """10, 20, ..., budget, then steps of ``after`` up to ``max_labels``."""
    points = list(range(step, budget + 1, step))
    if max_labels:
        points += list(range(budget + after, max_labels + 1, after))
    return points


_ENCODERS = {}


def _encoder(data, seed, quick):
    """The pool's contrastive encoder of a seed, trained once per process."""
    key = (data.name, seed, quick)
    if key not in _ENCODERS:
        _ENCODERS[key] = ContrastiveEncoder(max_epochs=1 if quick else 5, random_state=seed).fit(
            data.X_pool
        )
    return _ENCODERS[key]


def run_one(arm, seed, data, points, quick=False):
    """One arm and seed: a record per checkpoint, through the engine's round loop."""
    n_classes = int(data.y_pool.max()) + 1
    encoder = _encoder(data, seed, quick) if arm.endswith("+ssl") else None
    strategy = arm_strategy(arm, encoder)
    estimator = make_estimator(seed, n_classes, quick)
    if encoder is not None:  # the self-supervised start: the classifier's trunk too
        estimator.set_params(encoder_weights=encoder.trunk_state_dict())
    learner = ActiveLearner(estimator, query_strategy=strategy, random_state=seed)
    start, cpu = time.perf_counter(), time.process_time()
    labeled = first_labels(arm, strategy, data, points[0], seed)
    loop = ActiveLoop(None, data.X_pool, lambda idx: data.y_pool[idx], labeled, learner=learner)

    def measure(fitted):
        return {
            **evaluate(fitted.estimator_, data),
            "elapsed_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
        }

    records = []
    for k, n in enumerate(points):
        n_next = points[k + 1] - n if k + 1 < len(points) else 0
        result = loop.step(n_next, evaluate=measure)
        assert result.n_labeled == n
        labeled = list(result.labeled)
        records.append(
            {
                "arm": arm,
                "seed": seed,
                "data": data.name,
                "n_labeled": int(n),
                "class_counts": np.bincount(data.y_pool[labeled], minlength=n_classes).tolist(),
                **result.evaluation,
            }
        )
    return records


def run_full(seed, data, quick=False):
    """The full-data reference of a seed."""
    start, cpu = time.perf_counter(), time.process_time()
    model = make_estimator(seed, int(data.y_pool.max()) + 1, quick).fit(data.X_pool, data.y_pool)
    return {
        "arm": "full",
        "seed": seed,
        "data": data.name,
        "n_labeled": len(data.y_pool),
        **evaluate(model, data),
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


# -- analysis --------------------------------------------------------------


def default_out(data, max_labels):
    """The records folder of a configuration when ``--out`` is not given."""
    name = f"low_budget_{data}" + (f"_to{max_labels}" if max_labels else "")
    return Path("benchmarks/results") / name


def write_run_config(out, config):
    atomic_write(Path(out) / "run.json", json.dumps(config, indent=1) + "\n")


def check_run_config(out, config):
    """Refuse a folder whose records were made with another configuration.

    A rerun skips the (arm, seed) pairs already in ``DIR/records.jsonl``;
    records of another data set, other checkpoints or a ``--quick`` run
    would be taken as this run's own. The configuration is kept in
    ``DIR/run.json``; a folder written before it existed is checked on its
    records' data set and checkpoints (a run writes all its checkpoints at
    once).
    """
    path = Path(out) / "run.json"
    if path.exists():
        found = json.loads(path.read_text())
        diff = sorted(k for k in set(found) | set(config) if found.get(k) != config.get(k))
        if diff:
            raise SystemExit(
                f"{out} holds records of another run ({', '.join(diff)}: "
                f"{ {k: found.get(k) for k in diff} } there, "
                f"{ {k: config.get(k) for k in diff} } here); choose another --out"
            )
        return
    records = load_records(out)
    data = {r.get("data") for r in records} - {None}
    if data - {config["data"]}:
        raise SystemExit(
            f"{out} holds records of {', '.join(sorted(data))}, not {config['data']}; "
            "choose another --out"
        )
    seen = {r["n_labeled"] for r in records if r.get("arm") != "full"}
    if "checkpoints" in config and seen and seen != set(config["checkpoints"]):
        raise SystemExit(
            f"{out} holds records at checkpoints {sorted(seen)}, not "
            f"{config['checkpoints']}; choose another --out"
        )
    write_run_config(out, config)


def load_records(out):
    path = Path(out) / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def labels_to(curve, target, censored):
    """First labeled count whose AUROC reaches ``target`` (``censored`` if none)."""
    for n, auroc in sorted(curve.items()):
        if auroc >= target:
            return n
    return censored


def endpoints(records, arm, budget, fraction=0.98):
    """Per-seed endpoints of an arm: labels to ``fraction`` of full, AUROC at 20 and 40."""
    full = {r["seed"]: r["auroc"] for r in records if r["arm"] == "full"}
    out = {}
    for seed in sorted(full):
        curve = {
            r["n_labeled"]: r["auroc"]
            for r in records
            if r["arm"] == arm and r["seed"] == seed and r["n_labeled"] <= budget
        }
        if not curve:
            continue
        out[seed] = {
            "labels_to_98": labels_to(curve, fraction * full[seed], budget + 10),
            "auroc_20": curve.get(20, np.nan),
            "auroc_40": curve.get(40, np.nan),
        }
    return out


def compare(records, arm, reference="random", budget=100):
    """The three declared endpoints of ``arm`` against ``reference``, Holm over them."""
    ea, eb = endpoints(records, arm, budget), endpoints(records, reference, budget)
    seeds = sorted(set(ea) & set(eb))
    result = with_holm(
        {
            key: paired_by_seed(
                {s: e[key] for s, e in ea.items()}, {s: e[key] for s, e in eb.items()}
            )
            for key in ("labels_to_98", "auroc_20", "auroc_40")
        }
    )
    result["censored"] = {
        name: int(sum(e[s]["labels_to_98"] > budget for s in seeds))
        for name, e in ((arm, ea), (reference, eb))
    }
    return result


# the declared endpoints at the budget of the imbalanced pool and the phantoms
AT_BUDGET = {
    "imbalanced": ("auprc_minority", "balanced_accuracy_op"),
    "phantoms": ("auroc", "mae_macro"),
}


def compare_at_budget(records, arm, keys, reference="random", budget=100):
    """``keys`` of ``arm`` against ``reference`` at ``budget`` labels, Holm over the keys."""

    def at(name, key):
        return {r["seed"]: r[key] for r in records if r["arm"] == name and r["n_labeled"] == budget}

    return with_holm({key: paired_by_seed(at(arm, key), at(reference, key)) for key in keys})


def aulc_comparison(records, reference="random"):
    """AULC over every checkpoint, each arm against ``reference``, Holm over the arms.

    The beyond-100 endpoint: the area under a seed's AUROC curve from its
    first to its last checkpoint (:func:`area_under_learning_curve`). Only
    seeds whose curve reaches the largest checkpoint in the records count,
    so a run stopped part-way is left out rather than scored on a shorter
    range.
    """
    last = max(r["n_labeled"] for r in records if r["arm"] != "full")
    curves = {}
    for r in records:
        if r["arm"] != "full":
            curves.setdefault(r["arm"], {}).setdefault(r["seed"], {})[r["n_labeled"]] = r["auroc"]
    aulc = {
        arm: {
            seed: area_under_learning_curve(sorted(curve), [curve[n] for n in sorted(curve)])
            for seed, curve in by_seed.items()
            if last in curve
        }
        for arm, by_seed in curves.items()
    }
    reference_aulc = aulc.get(reference, {})
    result = with_holm(
        {
            arm: paired_by_seed(aulc[arm], reference_aulc)
            for arm in sorted(set(aulc) - {reference})
            if len(set(aulc[arm]) & set(reference_aulc)) > 1
        }
    )
    return {"range": [min(r["n_labeled"] for r in records if r["arm"] != "full"), last], **result}


def summary_table(records, budget=100):
    """Mean (SD) of every arm's AUROC per checkpoint, and mean ECE at the last."""
    arms = sorted({r["arm"] for r in records} - {"full"})
    lines = []
    for arm in arms:
        rows = [r for r in records if r["arm"] == arm and r["n_labeled"] <= budget]
        by_n = {}
        for r in rows:
            by_n.setdefault(r["n_labeled"], []).append(r)
        cells = [
            f"{n}: {np.mean([r['auroc'] for r in rs]):.3f} "
            f"({np.std([r['auroc'] for r in rs], ddof=1) if len(rs) > 1 else 0:.3f})"
            for n, rs in sorted(by_n.items())
        ]
        last = by_n[max(by_n)]
        lines.append(
            f"{arm} [{len(last)} seeds] "
            + "; ".join(cells)
            + f" | ECE {np.mean([r['ece'] for r in last]):.3f}, prior+temperature "
            f"{np.mean([r['ece_corrected'] for r in last]):.3f}, temperature "
            f"{np.mean([r.get('ece_temperature', np.nan) for r in last]):.3f}"
        )
    return "\n".join(lines)


def analyze(out, budget=100):
    records = load_records(out)
    full = [r["auroc"] for r in records if r["arm"] == "full"]
    print(f"full-data AUROC {np.mean(full):.4f} +- {np.std(full, ddof=1):.4f} ({len(full)} seeds)")
    print(summary_table(records, budget))
    arms = sorted({r["arm"] for r in records} - {"full", "random"})
    results = {arm: compare(records, arm, budget=budget) for arm in arms}
    keys = AT_BUDGET.get(records[0].get("data"))
    if keys:
        for arm in arms:
            results[arm]["at_budget"] = compare_at_budget(records, arm, keys, budget=budget)
    if max(r["n_labeled"] for r in records if r["arm"] != "full") > budget:
        results["aulc_beyond_budget"] = aulc_comparison(records)
    print(json.dumps(results, indent=1))
    (Path(out) / "analysis.json").write_text(json.dumps(results, indent=1))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        help="records folder (default: benchmarks/results/low_budget_<data>[_to<max-labels>])",
    )
    parser.add_argument(
        "--data", default="pneumoniamnist", choices=["pneumoniamnist", "imbalanced", "phantoms"]
    )
    parser.add_argument(
        "--arms", default="primary", help="'primary', 'all' or comma-separated arm names"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument(
        "--max-labels",
        type=int,
        default=0,
        help="continue with queries of 50 up to this many labels",
    )
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny training (smoke test)")
    parser.add_argument("--analyze", metavar="DIR", help="only analyse the records in DIR")
    args = parser.parse_args(argv)
    if args.analyze:
        return analyze(args.analyze, args.budget)
    groups = {"primary": PRIMARY, "all": ALL_ARMS}
    arms = list(dict.fromkeys(a for name in args.arms.split(",") for a in groups.get(name, [name])))
    out = Path(args.out) if args.out else default_out(args.data, args.max_labels)
    out.mkdir(parents=True, exist_ok=True)
    points = checkpoints(args.budget, max_labels=args.max_labels)
    check_run_config(out, {"data": args.data, "checkpoints": points, "quick": args.quick})
    data = load_data(args.data)
    done = {(r["arm"], r["seed"]) for r in load_records(out)}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [("full", s) for s in seeds if ("full", s) not in done]
    jobs += [(a, s) for s in seeds for a in arms if (a, s) not in done]

    def work(job):
        arm, seed = job
        if arm == "full":
            return [run_full(seed, data, args.quick)]
        return run_one(arm, seed, data, points, args.quick)

    from joblib import Parallel, delayed

    with open(out / "records.jsonl", "a") as fh:
        for recs in Parallel(n_jobs=args.n_jobs, return_as="generator")(
            delayed(work)(job) for job in jobs
        ):
            for r in recs:
                fh.write(json.dumps(r) + "\n")
            fh.flush()
            print(
                f"{recs[0]['arm']} seed {recs[0]['seed']}: {recs[-1]['elapsed_s']:.1f} s, "
                f"AUROC {recs[-1]['auroc']:.3f}",
                file=sys.stderr,
                flush=True,
            )
    return analyze(out, args.budget)


if __name__ == "__main__":
    main()
