"""The confirmatory study's declared analysis and the pilot's choice (``bench_confirmatory.py``).

Endpoints per (data set, seed, arm) (:func:`endpoints`), the declared
families with Holm's correction and their success criteria
(:func:`families`, :func:`criteria`), the exploratory families, and the
pilot's choice of encoder setting and fine-tuning (:func:`choose_setting`,
:func:`pilot_tables`). Statistics come from :mod:`skal_cxr.report`.
"""

import numpy as np
from _low_budget_analysis import labels_to
from _tables import markdown_table

from skal_cxr.report import area_under_learning_curve, paired_by_seed, with_holm

__all__ = [
    "CENSORED",
    "ALPHA",
    "TIE",
    "FINE_TUNE_GAIN",
    "curve_of",
    "aulc",
    "endpoints",
    "by_arm",
    "compare",
    "families",
    "criteria",
    "secondary",
    "choose_setting",
    "pilot_tables",
    "render",
]

CENSORED = 350  # labels counted for a run that never reaches 98 % by 300
ALPHA = 0.05
TIE = 0.005  # the pilot's AUROC ties, broken by the encoder's CPU time
FINE_TUNE_GAIN = 0.005  # the AULC gain that adopts fine-tuning


def curve_of(record, key="auroc"):
    """``{n_labeled: value}`` of a record's checkpoints."""
    return {c["n_labeled"]: c[key] for c in record["curve"] if key in c}


def aulc(curve, low=10, high=300):
    """Normalised area under ``{n: auroc}`` between ``low`` and ``high`` labels (NaN if short)."""
    points = sorted(n for n in curve if low <= n <= high)
    if not points or points[0] != low or points[-1] != high:
        return np.nan
    return area_under_learning_curve(points, [curve[n] for n in points])


def endpoints(record, reference, censored=CENSORED):
    """The declared endpoints of one record.

    Parameters
    ----------
    record : dict
        A record of :func:`_confirmatory.run_arm` (``curve``, ...).
    reference : float or None
        The seed's full-data AUROC (``None``: no labels-to-98 %).
    censored : int
        Labels counted for a run that never reaches 98 % of ``reference``.

    Returns
    -------
    values : dict
        ``labels_to_98``, ``censored``, ``auroc_10/20/40``, ``aulc``,
        ``auprc_minority_40``, ``balanced_accuracy_40``, ``ece_<raw|em|val>_<n>``
        and ``all_classes_at_20``.
    """
    curve = curve_of(record)
    last = max(curve)
    out = {f"auroc_{n}": curve.get(n, np.nan) for n in (10, 20, 40)}
    out["aulc"] = aulc(curve, min(curve), last)
    if reference is not None:
        out["labels_to_98"] = labels_to(curve, 0.98 * reference, censored)
        out["censored"] = out["labels_to_98"] > last
    at = {c["n_labeled"]: c for c in record["curve"]}
    out["auprc_minority_40"] = at.get(40, {}).get("auprc_minority", np.nan)
    out["balanced_accuracy_40"] = at.get(40, {}).get("balanced_accuracy_op", np.nan)
    for n, c in at.items():
        for name, key in (("raw", "ece"), ("em", "ece_em"), ("val", "ece_corrected")):
            if "ece_em" in c:
                out[f"ece_{name}_{n}"] = c[key]
    if 20 in at:
        out["all_classes_at_20"] = bool(min(at[20]["class_counts"]) > 0)
    out["labels_all_classes"] = record.get("labels_all_classes")
    return out


def by_arm(records, censored=CENSORED):
    """``{data: {arm: {seed: endpoints}}}``; labels-to-98 % against the better full-data fit."""
    full = {}
    for r in records:
        if r["arm"].startswith("full"):
            key = (r["data"], r["seed"])
            full[key] = max(full.get(key, -np.inf), r["auroc"])
    out = {}
    for r in records:
        if r["arm"].startswith("full"):
            continue
        ref = full.get((r["data"], r["seed"]))
        out.setdefault(r["data"], {}).setdefault(r["arm"], {})[r["seed"]] = endpoints(
            r, ref, censored
        )
    return out


def compare(table, data, arm, reference, key):
    """Paired tests of ``arm - reference`` on endpoint ``key`` over the seeds both have."""
    a, b = table.get(data, {}).get(arm, {}), table.get(data, {}).get(reference, {})
    pick = {s: e[key] for s, e in a.items() if key in e}, {s: e[key] for s, e in b.items()}
    return paired_by_seed(*pick)


#: the declared families: name -> [(label, data set, arm, reference, endpoint)]
FAMILIES = {
    "primary": [
        ("A - B AUROC at 10", "pneumoniamnist", "A", "B", "auroc_10"),
        ("A - B labels to 98 %", "pneumoniamnist", "A", "B", "labels_to_98"),
        ("A - C labels to 98 %", "pneumoniamnist", "A", "C", "labels_to_98"),
    ],
    "imbalanced": [
        ("A - B minority AUPRC at 40", "imbalanced", "A", "B", "auprc_minority_40"),
        ("A - B balanced accuracy at 40", "imbalanced", "A", "B", "balanced_accuracy_40"),
    ],
    "phantoms": [
        ("A - B AUROC at 20, 28 px", "phantoms28", "A", "B", "auroc_20"),
        ("A - B AUROC at 20, 64 px", "phantoms64", "A", "B", "auroc_20"),
    ],
}


def families(table, declared=FAMILIES):
    """Each declared family's paired tests, Holm-adjusted within the family."""
    return {
        name: with_holm({label: compare(table, d, a, b, key) for label, d, a, b, key in tests})
        for name, tests in declared.items()
    }


def _significant_gain(result, sign=1):
    return bool(sign * result["diff"] > 0 and result["p_t_holm"] < ALPHA)


def criteria(table, fams):
    """The declared success criteria: ``{name: (met, numbers in words)}``."""
    out = {}
    primary = fams["primary"]
    a98 = [e["labels_to_98"] for e in table.get("pneumoniamnist", {}).get("A", {}).values()]
    median = float(np.median(a98)) if a98 else np.nan
    r10 = primary["A - B AUROC at 10"]
    out["primary"] = (
        bool(median <= 20 and _significant_gain(r10)),
        f"median labels to 98 % of A {median:g} (<= 20 needed); A - B AUROC at 10 "
        f"{r10['diff']:+.4f}, Holm p {r10['p_t_holm']:.4g}",
    )
    imb = fams["imbalanced"]["A - B minority AUPRC at 40"]
    a = table.get("imbalanced", {}).get("A", {})
    lacking = sorted(s for s, e in a.items() if not e.get("all_classes_at_20", False))
    out["imbalanced"] = (
        bool(_significant_gain(imb) and not lacking and a),
        f"A - B minority AUPRC at 40 {imb['diff']:+.4f}, Holm p {imb['p_t_holm']:.4g}; "
        f"seeds of A lacking a class at 20 labels: {lacking or 'none'}",
    )
    ph = fams["phantoms"]
    out["phantoms"] = (
        all(_significant_gain(r) for r in ph.values()),
        "; ".join(f"{k} {r['diff']:+.4f}, Holm p {r['p_t_holm']:.4g}" for k, r in ph.items()),
    )
    for corr in ("em", "val"):
        gaps, ok = [], True
        for data, arms in sorted(table.items()):
            for n in (20, 40, 100):
                key = f"ece_{corr}_{n}"
                ma = np.mean([e.get(key, np.nan) for e in arms.get("A", {}).values()])
                mb = np.mean([e.get(key, np.nan) for e in arms.get("B", {}).values()])
                gap = ma - mb
                ok = ok and bool(abs(gap) <= 0.03)
                gaps.append(f"{data} {n}: {gap:+.3f}")
        out[f"calibration ({corr})"] = (ok, "A - B mean corrected ECE " + ", ".join(gaps))
    return out


SECONDARY_KEYS = (
    "labels_to_98",
    "auroc_10",
    "auroc_20",
    "auroc_40",
    "aulc",
    "auprc_minority_40",
    "balanced_accuracy_40",
    *(f"ece_{c}_{n}" for c in ("raw", "em", "val") for n in (20, 40, 100)),
)


def secondary(table):
    """The exploratory families, each Holm-adjusted per data set.

    ``vs_B``: D, E, F and G against B on every endpoint; ``aulc_vs_C``:
    every arm's AULC against C.
    """
    out = {}
    for data, arms in sorted(table.items()):
        keys = [k for k in SECONDARY_KEYS if any(k in e for e in arms.get("B", {}).values())]
        vs_b = {
            f"{arm} - B {key}": compare(table, data, arm, "B", key)
            for arm in ("D", "E", "F", "G")
            if arm in arms and "B" in arms
            for key in keys
        }
        vs_c = {
            f"{arm} - C aulc": compare(table, data, arm, "C", "aulc")
            for arm in sorted(arms)
            if arm != "C" and "C" in arms
        }
        out[data] = {"vs_B": with_holm(vs_b) if vs_b else {}, "aulc_vs_C": with_holm(vs_c)}
    return out


def choose_setting(summary, tie=TIE):
    """The pilot's choice: highest mean AUROC at 20 labels, ties by lower encoder CPU time.

    Parameters
    ----------
    summary : dict
        ``{tag: {"auroc_20": float, "encoder_cpu_s": float}}``.
    tie : float
        Settings within ``tie`` of the best AUROC count as tied.

    Returns
    -------
    tag : str
    """
    best = max(s["auroc_20"] for s in summary.values())
    tied = [t for t, s in summary.items() if s["auroc_20"] >= best - tie]
    return min(tied, key=lambda t: summary[t]["encoder_cpu_s"])


def pilot_summary(records_by_tag, datasets):
    """Per setting: mean AUROC at 20 per data set and overall, mean encoder CPU-s, AULC, seeds."""
    summary = {}
    for tag, records in records_by_tag.items():
        row = {"per_data": {}}
        for data in datasets:
            rs = [r for r in records if r["data"] == data and r["arm"] == "A"]
            row["per_data"][data] = {
                "auroc_20": float(np.mean([curve_of(r)[20] for r in rs])) if rs else np.nan,
                "aulc": float(np.mean([aulc(c, min(c), max(c)) for c in map(curve_of, rs)]))
                if rs
                else np.nan,
                "encoder_cpu_s": float(np.mean([r["encoder_cpu_s"] for r in rs])) if rs else np.nan,
                "seeds": sorted(r["seed"] for r in rs),
            }
        per = row["per_data"].values()
        row["auroc_20"] = float(np.mean([p["auroc_20"] for p in per]))
        row["aulc"] = float(np.mean([p["aulc"] for p in per]))
        row["encoder_cpu_s"] = float(np.mean([p["encoder_cpu_s"] for p in per]))
        summary[tag] = row
    return summary


def pilot_tables(summary, datasets):
    """Markdown lines of the pilot's grid: one row per setting (figures per data set)."""
    header = ["setting", *(f"AUROC@20 {d}" for d in datasets), "mean", "encoder CPU-s", "seeds"]
    rows = [
        [
            tag,
            *(f"{row['per_data'][d]['auroc_20']:.4f}" for d in datasets),
            f"{row['auroc_20']:.4f}",
            " / ".join(f"{row['per_data'][d]['encoder_cpu_s']:.0f}" for d in datasets),
            " / ".join(str(len(row["per_data"][d]["seeds"])) for d in datasets),
        ]
        for tag, row in summary.items()
    ]
    return markdown_table(header, rows, align=["---"] + ["---:"] * (len(header) - 1))


def render(table, fams, met, sec):
    """The declared analysis in words and tables (lines)."""
    lines = []
    for data, arms in sorted(table.items()):
        lines.append(f"## {data}")
        header = ["arm", "seeds", "labels to 98 %", "censored", "AUROC@10", "@20", "@40", "AULC"]
        rows = []
        for arm, seeds in sorted(arms.items()):
            es = list(seeds.values())

            def mean(key, es=es):
                return np.mean([e.get(key, np.nan) for e in es])

            to98 = [e["labels_to_98"] for e in es if "labels_to_98" in e]
            rows.append(
                [
                    arm,
                    len(es),
                    f"{np.median(to98):g}" if to98 else "-",
                    sum(e.get("censored", False) for e in es),
                    *(f"{mean(k):.4f}" for k in ("auroc_10", "auroc_20", "auroc_40", "aulc")),
                ]
            )
        lines += markdown_table(header, rows)
    for name, results in fams.items():
        lines.append(f"## family {name}")
        for label, r in results.items():
            lines.append(
                f"- {label}: {r['diff']:+.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}], "
                f"t p {r['p_t']:.4g} (Holm {r['p_t_holm']:.4g}), Wilcoxon p "
                f"{r['p_wilcoxon']:.4g}, n {r['n']}"
            )
    lines.append("## success criteria")
    for name, (ok, words) in met.items():
        lines.append(f"- {name}: {'met' if ok else 'not met'} ({words})")
    lines.append("## exploratory (Holm per data set)")
    for data, groups in sec.items():
        for results in groups.values():
            for label, r in results.items():
                lines.append(
                    f"- {data} {label}: {r['diff']:+.4f}, Holm p {r['p_t_holm']:.4g}, n {r['n']}"
                )
    return lines
