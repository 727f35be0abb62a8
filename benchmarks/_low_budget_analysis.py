"""The low-budget study's declared analysis (``bench_low_budget.py --analyze``).

Endpoints per seed (labels to 98 % of the full-data AUROC, AUROC at 20 and
40 labels), each arm paired with random over seeds with Holm's correction
(:func:`compare`), the declared endpoints at the budget
(:func:`compare_at_budget`) and the area under the learning curve beyond it
(:func:`aulc_comparison`); statistics from :mod:`skal_cxr.report`.
"""

import json
from pathlib import Path

import numpy as np
from _records import load_records

from skal_cxr.report import area_under_learning_curve, paired_by_seed, with_holm

__all__ = [
    "AT_BUDGET",
    "labels_to",
    "endpoints",
    "compare",
    "compare_at_budget",
    "aulc_comparison",
    "summary_table",
    "analyze",
]


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
    """Print the summary and the declared tests of ``DIR``; write ``DIR/analysis.json``."""
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
