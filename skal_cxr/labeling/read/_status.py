"""What a project's labels add up to: consensus, agreement, progress, stopping, export.

Pure functions of the queue's per-image states (``Queue.image_states``)
and the rounds, so that one snapshot of the database gives one answer.
"""

import json

import numpy as np

from ...datasets._agreement import consensus_codes, fleiss_kappa

__all__ = [
    "labeled_set",
    "kappa",
    "progress",
    "rater_batch",
    "waiting_for",
    "decode_rounds",
    "stopping_signal",
    "status",
    "blinded",
]


def labeled_set(states, classes, consensus, review=None, decided=None):
    """Images with a consensus label, in queue order: ``(image_ids, codes)``.

    With ``consensus="adjudicate"``, an image ``review.needs`` is left out
    until ``decided`` (``{image_id: row}``) has its decision; other images
    take the majority.
    """
    codes = {c: i for i, c in enumerate(classes)}
    ids, out = [], []
    for image_id, s in states.items():
        if not (s["done"] and s["labels"]):
            continue
        if consensus == "adjudicate":
            if review is not None and review.needs(s):
                if image_id in (decided or {}):
                    ids.append(image_id)
                    out.append(codes[decided[image_id]["label"]])
                continue
            rule = "majority"
        else:
            rule = consensus
        votes = np.array([[codes[v] for v in s["labels"].values()]])
        ids.append(image_id)
        out.append(int(consensus_codes(votes, len(classes), rule)[0]))
    return np.array(ids, dtype=np.int64), np.array(out, dtype=np.int64)


def kappa(states, classes, labels_per_image):
    """Fleiss' kappa over images with all ``labels_per_image >= 2`` labels, or None."""
    k = labels_per_image
    if k < 2:
        return None
    codes = {c: i for i, c in enumerate(classes)}
    rows = [
        [codes[v] for v in s["labels"].values()] for s in states.values() if len(s["labels"]) == k
    ]
    if not rows:
        return None
    value = fleiss_kappa(np.array(rows), len(classes))
    return None if not np.isfinite(value) else value


def progress(states, latest, n_images, budget, labeled=None, awaiting=0):
    """Batch and overall progress (as in ``GET /api/next``).

    ``labeled`` is the number of images with a settled label (a consensus);
    ``None`` counts every image with all its labels. ``awaiting`` images have
    all their labels but wait for an adjudicator's decision.
    """
    batch = [s for s in states.values() if s["round"] == latest["round"] and s["kind"] == "batch"]
    if labeled is None:
        labeled = sum(1 for s in states.values() if s["done"] and s["labels"])
    return {
        "round": latest["round"],
        "batch": {"done": sum(s["done"] for s in batch), "total": len(batch)},
        "progress": {
            "labeled": labeled,
            "queried": len(states),
            "total": n_images,
            "budget": budget,
            "awaiting_adjudication": awaiting,
        },
    }


def rater_batch(states, latest, rid, labels_per_image):
    """Rater ``rid``'s share of the latest batch: ``{"done", "total"}``.

    Done: batch images the rater labeled or skipped. Total: those, the ones
    open for the rater, and the ones still needing a label the rater may get.
    """
    batch = [s for s in states.values() if s["round"] == latest["round"] and s["kind"] == "batch"]
    done = sum(
        1 for s in batch if rid in s["labels"] or (rid in s["seen"] and rid not in s["open"])
    )
    could = sum(
        1
        for s in batch
        if rid in s["open"]
        or (not s["done"] and rid not in s["seen"] and len(s["labels"]) < labels_per_image)
    )
    return {"done": done, "total": done + could}


def waiting_for(states, latest, training_state, n_pending):
    """What a rater with nothing to label waits for: ``"training"`` (the next model),
    ``"raters"`` (other raters' labels of the batch) or ``"adjudication"``."""
    if training_state in ("training", "querying"):
        return "training"
    batch = [s for s in states.values() if s["round"] == latest["round"] and s["kind"] == "batch"]
    if any(not s["done"] for s in batch):
        return "raters"
    if n_pending:
        return "adjudication"
    return "training"


def decode_rounds(rows):
    """Round rows as dicts, their JSON columns decoded and ``n_queried`` added."""
    out = []
    for r in rows:
        d = dict(r)
        for key in ("queried", "scores", "reserve", "class_counts", "stop_predictions"):
            d[key] = None if d[key] is None else json.loads(d[key])
        d["n_queried"] = len(d["queried"])
        out.append(d)
    return out


def _cohen_kappa(a, b):
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if np.array_equal(a, b):
        return 1.0
    value = cohen_kappa_score(a, b)
    return float(value) if np.isfinite(value) else 0.0


def stopping_signal(settings, rounds, n_queued, n_images=None):
    """Stabilizing predictions (Bloodgood and Vijay-Shanker, 2009), the budget and the pool.

    Cohen's kappa between the stop-set predictions of successive models; the
    signal is up when the mean of the last ``stop_window`` kappas reaches
    ``stop_threshold``, when the budget is spent, or when every image of the
    pool has been queued (nothing is left to label, budget or not).

    Parameters
    ----------
    settings : dict
        The project's settings (``stop_window``, ``stop_threshold``, ``budget``).
    rounds : list of dict
        The rounds, oldest first, with their ``stop_predictions``.
    n_queued : int
        Images queued so far.
    n_images : int, default=None
        Images in the pool; ``None`` leaves the pool out of the signal.

    Returns
    -------
    signal : dict
        ``stop``, ``kappa_window``, ``threshold``, ``budget_left`` and
        ``pool_left`` (images never queued; ``None`` without ``n_images``).
    """
    cfg = settings
    preds = [r["stop_predictions"] for r in rounds if r["stop_predictions"] is not None]
    kappas = [_cohen_kappa(a, b) for a, b in zip(preds, preds[1:])]
    window = kappas[-cfg["stop_window"] :]
    stable = len(window) == cfg["stop_window"] and float(np.mean(window)) >= cfg["stop_threshold"]
    budget_left = None if cfg["budget"] is None else max(0, cfg["budget"] - n_queued)
    pool_left = None if n_images is None else max(0, n_images - n_queued)
    return {
        "stop": bool(stable or budget_left == 0 or pool_left == 0),
        "kappa_window": window,
        "threshold": cfg["stop_threshold"],
        "budget_left": budget_left,
        "pool_left": pool_left,
    }


def blinded(status_, rater):
    """What a rater (not an adjudicator) sees of ``GET /api/status``: his own counts,
    the rounds and the training, no agreement between raters (blinding)."""
    out = dict(status_)
    out["raters"] = [r for r in status_["raters"] if r["name"] == rater]
    out["kappa"] = None
    out["agreement"] = None
    out["blinded"] = True
    return out


def status(name, classes, label_counts, kappa_, rounds, training, stopping):
    """The dict of ``GET /api/status`` (see ``LabelingProject.status``)."""
    return {
        "project": name,
        "classes": classes,
        "raters": [{"name": n, "n_labels": c} for n, c in label_counts.items()],
        "kappa": kappa_,
        "rounds": [
            {
                k: r[k]
                for k in (
                    "round",
                    "strategy",
                    "n_queried",
                    "fit_time",
                    "query_time",
                    "n_labeled",
                    "class_counts",
                )
            }
            for r in rounds
        ],
        "training": training,
        "stopping": stopping,
    }
