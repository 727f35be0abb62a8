"""The report's first sentence: how many labels each strategy needed for a target.

A user's question is "how many images must my radiologists label to get a
model this good?". :func:`labels_to_target` answers it per strategy from the
complete runs: per seed, the labeled count of the first round whose score
reaches ``fraction`` of that seed's full-data score; a seed that does not
reach it within the budget is *censored* and counted as one query beyond the
last round (so the mean is a lower bound, and the report says how many seeds
were censored). The 95 % confidence interval is a percentile bootstrap over
seeds. :func:`headline` turns it into sentences.
"""

import math

import numpy as np

from ._format import format_value
from ._paired import bootstrap_ci
from ._statistics import labels_to_reach, paired_comparison

__all__ = ["labels_to_target", "headline", "model_headline"]

#: How the report names the model of an arm.
MODEL_TEXT = {
    "view": "on the pool's contrastive view",
    "cnn": "without the view (the CNN from pixels)",
}


def labels_to_target(
    runs, baselines, *, fraction=0.98, metric="auroc", n_boot=10_000, random_state=0
):
    """Labels one strategy needed to reach ``fraction`` of the full-data score.

    Parameters
    ----------
    runs : dict
        ``{seed: [record, ...]}``, complete runs of one strategy in round
        order (``learning_curves(...)[0][strategy]``).
    baselines : dict
        ``{seed: record}`` of the full-data baselines.
    fraction : float, default=0.98
        Fraction of each seed's full-data ``metric`` to reach.
    metric : str, default="auroc"
        The score.
    n_boot : int, default=10000
        Bootstrap resamples of the seeds.
    random_state : int, default=0
        Seeds the bootstrap.

    Returns
    -------
    result : dict
        ``per_seed`` (``{seed: labels}``, censored seeds at ``censored_at``),
        ``censored`` (how many seeds did not reach the target),
        ``censored_at`` (last round plus one query), ``budget`` (the
        last round's labeled count), ``mean``, ``ci``
        (``(low, high)``, 95 % percentile bootstrap of the mean), ``target``
        (mean over seeds of the per-seed target) and ``n_seeds``.
    """
    seeds = sorted(s for s in runs if s in baselines)
    if not seeds:
        return {
            "per_seed": {},
            "censored": 0,
            "censored_at": None,
            "budget": None,
            "mean": math.nan,
            "ci": (math.nan, math.nan),
            "target": math.nan,
            "n_seeds": 0,
        }
    sizes = [r["n_labeled"] for r in runs[seeds[0]]]
    step = sizes[-1] - sizes[-2] if len(sizes) > 1 else sizes[-1]
    censored_at = sizes[-1] + step
    per_seed, targets, censored = {}, [], 0
    for s in seeds:
        goal = fraction * baselines[s]["metrics"][metric]
        targets.append(goal)
        n = labels_to_reach(
            [r["n_labeled"] for r in runs[s]], [r["metrics"][metric] for r in runs[s]], goal
        )
        censored += n is None
        per_seed[s] = censored_at if n is None else n
    values = np.array([per_seed[s] for s in seeds], dtype=float)
    low, high = bootstrap_ci(values, n_boot=n_boot, random_state=random_state)
    return {
        "per_seed": per_seed,
        "censored": censored,
        "censored_at": censored_at,
        "budget": sizes[-1],
        "mean": float(values.mean()),
        "ci": (float(low), float(high)),
        "target": float(np.mean(targets)),
        "n_seeds": len(seeds),
    }


def _phrase(result):
    """``N labels (95 % CI a-b, n seeds[; k censored])``."""
    if result["censored"] == result["n_seeds"]:
        return (
            f"more than {result['budget']} labels (none of the {result['n_seeds']} seeds "
            "reached it within the budget)"
        )
    text = (
        f"{result['mean']:.0f} labels (95 % CI {result['ci'][0]:.0f}-"
        f"{result['ci'][1]:.0f}, {result['n_seeds']} seeds"
    )
    if result["censored"]:
        text += (
            f"; {result['censored']} did not reach it within the budget and count "
            f"as {result['censored_at']}"
        )
    return text + ")"


def headline(curves, baselines, *, fraction=0.98, metric="auroc", label="AUROC"):
    """Sentences "to reach AUROC X, strategy S needed N labels (95 % CI), random needed M".

    Parameters
    ----------
    curves : dict
        ``{strategy: {seed: [record, ...]}}`` (from :func:`learning_curves`).
    baselines : dict
        ``{seed: record}`` of the full-data baselines.
    fraction : float, default=0.98
        Fraction of the full-data score to reach.
    metric : str, default="auroc"
        The score.
    label : str, default="AUROC"
        Its name in the sentences.

    Returns
    -------
    lines : list of str
        One sentence per strategy other than random (fewest labels first),
        each against random when random ran, with the paired t-test of the
        per-seed labels; empty without baselines.
    """
    results = {
        s: labels_to_target(runs, baselines, fraction=fraction, metric=metric)
        for s, runs in curves.items()
    }
    results = {s: r for s, r in results.items() if r["n_seeds"]}
    if not results:
        return []
    target = np.mean([r["target"] for r in results.values()])
    reference = results.get("random")
    lines = []
    for s in sorted((s for s in results if s != "random"), key=lambda s: results[s]["mean"]):
        text = (
            f"To reach {label} {target:.3f} ({round(100 * fraction)} % of the full-data "
            f"{label}, per seed), {s} needed {_phrase(results[s])}"
        )
        if reference is not None:
            common = sorted(set(results[s]["per_seed"]) & set(reference["per_seed"]))
            test = paired_comparison(
                [results[s]["per_seed"][k] for k in common],
                [reference["per_seed"][k] for k in common],
            )
            p = test["p_ttest"]
            text += (
                f"; random needed {_phrase(reference)}"
                f" (paired t-test p = {format_value(p, spec='.2g')})"
            )
        lines.append(text + ".")
    if not lines and reference is not None:
        lines.append(
            f"To reach {label} {target:.3f} ({round(100 * fraction)} % of the "
            f"full-data {label}, per seed), random needed {_phrase(reference)}."
        )
    return lines


def _reference(baselines):
    """``, the better of ...`` when the full-data reference is the better of several models."""
    models = sorted({m for b in baselines.values() for m in b.get("models", ())})
    if len(models) < 2:
        return ""
    return (
        ", the better of the "
        + " and the ".join(
            {"view": "head on the view", "cnn": "CNN from pixels"}.get(m, m) for m in models
        )
        + " trained on the whole pool"
    )


def _arm(arm, model):
    """``(strategy, model)`` of an arm ``"strategy"`` or ``"strategy@model"``."""
    strategy, sep, named = arm.partition("@")
    return strategy, named if sep else model


def model_headline(curves, baselines, arms, model, *, fraction=0.98, metric="auroc", label="AUROC"):
    """The lead of a comparison across models: the default, random on its model, random without.

    "To reach AUROC X (98 % of the full-data AUROC): the default needed N
    labels (95 % CI), random on the same view M, random without the view
    K", then the paired tests of the per-seed labels
    (:func:`~skal_cxr.report.paired_tests`: mean difference with its
    bootstrap 95 % CI, paired t-test and exact Wilcoxon test).

    Parameters
    ----------
    curves : dict
        ``{arm: {seed: [record, ...]}}`` (from :func:`learning_curves`).
    baselines : dict
        ``{seed: record}`` of the full-data references.
    arms : list of str
        The configuration's ``strategies`` in order; the first that is not
        random sampling is the default.
    model : str
        The configuration's ``model`` (of the arms without ``@model``).
    fraction : float, default=0.98
        Fraction of the full-data score to reach.
    metric : str, default="auroc"
        The score.
    label : str, default="AUROC"
        Its name in the sentences.

    Returns
    -------
    lines : list of str
        Empty unless the arms include a default and random sampling on
        another model (then the lead sentence and one sentence of tests per
        comparison).
    """
    from ._paired import paired_tests

    arms = [a for a in arms if a in curves]
    default = next((a for a in arms if _arm(a, model)[0] != "random"), None)
    if default is None:
        return []
    strategy, own = _arm(default, model)
    same = next((a for a in arms if _arm(a, model) == ("random", own)), None)
    others = [a for a in arms if _arm(a, model)[0] == "random" and _arm(a, model)[1] != own]
    if not others:
        return []
    compared = [a for a in (same, *others) if a is not None]
    results = {
        a: labels_to_target(curves[a], baselines, fraction=fraction, metric=metric)
        for a in (default, *compared)
    }
    if not results[default]["n_seeds"]:
        return []
    target = np.mean([r["target"] for r in results.values() if r["n_seeds"]])
    names = {a: f"random {MODEL_TEXT.get(_arm(a, model)[1], _arm(a, model)[1])}" for a in others}
    if same is not None:
        names[same] = "random on the same view" if own == "view" else f"random ({own})"
    parts = [f"{names[a]} {_phrase(results[a])}" for a in compared]
    lines = [
        f"To reach {label} {target:.3f} ({round(100 * fraction)} % of the full-data "
        f"{label}, per seed{_reference(baselines)}): the default ({strategy} "
        f"{MODEL_TEXT.get(own, own)}) needed "
        f"{_phrase(results[default])}; " + "; ".join(parts) + "."
    ]
    tests = []
    for a in compared:
        common = sorted(set(results[default]["per_seed"]) & set(results[a]["per_seed"]))
        out = paired_tests(
            [results[default]["per_seed"][k] for k in common],
            [results[a]["per_seed"][k] for k in common],
        )
        tests.append(
            f"against {names[a]}: {out['diff']:+.1f} labels (95 % CI {out['ci'][0]:+.1f} to "
            f"{out['ci'][1]:+.1f}), paired t-test p = {format_value(out['p_t'], spec='.2g')}, "
            f"Wilcoxon p = {format_value(out['p_wilcoxon'], spec='.2g')} ({out['n']} seeds)"
        )
    lines.append("Paired over seeds, the default's labels " + "; ".join(tests) + ".")
    return lines
