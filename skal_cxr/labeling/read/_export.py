"""Exports that lose nothing: the labels CSV and the audit trail (JSON lines).

The CSV has one row per image with a consensus label (so that
:func:`~skal_cxr.datasets.load_image_folder` reads it back): the consensus
and how it was reached, the patient and study date, every rater's label,
note and seconds (every reading of the film counted: a label undone and
given again adds the time before the undo), who skipped it, the round,
queue and model that queried it and its acquisition score; a project with
zone scores adds the mean total (``score_total``) and each rater's zone
scores, total and raw scores; the last column, ``adjudication_seconds``, is
the time the standing decision's adjudicator spent on the film, over their
decision and revisions. A correction or revision made from the corrections
panel (no film read there) adds no time and keeps the time before.
The JSON-lines audit trail has every event in time order: rounds, labels and
their withdrawals and corrections (with the old and the new label),
assignments (handed out, skipped, expired), skips (each with the seconds
from the image being handed out to the skip), adjudications and their
revisions (each with the adjudicator's seconds) and deferrals.
Both name patients and raters: they are written readable by their owner only
(``0o600``), as are the DICOM reports and the database backups.
"""

import csv
import json

from ..._atomic import atomic_write, replacing

#: Permissions of every export: readable and writable by its owner only.
EXPORT_MODE = 0o600

__all__ = [
    "export_rows",
    "write_csv",
    "audit_events",
    "write_jsonl",
    "zone_score_means",
    "WRITERS",
]


def _query_info(rounds):
    """``{image_id: (model_version, rank, score)}`` from the rounds' queried lists."""
    out = {}
    for r in rounds:
        model = "cold start" if r["round"] == 0 else f"round-{r['round']}"
        scores = r["scores"] or []
        for rank, image_id in enumerate(r["queried"]):
            out[image_id] = (model, rank + 1, scores[rank] if rank < len(scores) else None)
        for rank, image_id in enumerate(r["reserve"] or []):
            out.setdefault(image_id, (model, len(r["queried"]) + rank + 1, None))
    return out


def _how(project, votes, code, decided):
    if decided is not None:
        return "adjudicated"
    if len(votes) == 1:
        return "single"
    if len(set(votes.values())) == 1:
        return "unanimous"
    rule = project.config["consensus"]
    return "majority" if rule == "adjudicate" else rule


def _score_header(scheme, names):
    """The score columns of a scored project (none without a scheme).

    ``score_total``: the mean of the raters' totals (what ``skal-cxr
    simulate --score-column`` bins); per rater, each zone's score, the total
    and the raw scores (``;``-separated, as entered).
    """
    if scheme is None:
        return []
    zones = [f"{scheme.name}_{z.key}" for z in scheme.zones]
    return ["score_total"] + [f"{what}_{n}" for n in names for what in [*zones, "total", "scores"]]


def _score_cells(scheme, labels):
    """The score cells of one image's row; ``labels``: each rater's standing row or None."""
    if scheme is None:
        return []
    cells, totals = [], []
    for lab in labels:
        scores = None if lab is None or lab["scores"] is None else json.loads(lab["scores"])
        if scores is None:
            cells += [""] * (len(scheme.zones) + 2)
            continue
        total = scheme.total(scores)
        totals.append(total)
        cells += [*scheme.zone_scores(scores), total, ";".join(map(str, scores))]
    mean = "" if not totals else format(sum(totals) / len(totals), "g")
    return [mean, *cells]


def zone_score_means(project):
    """``{image_id: (scheme, zone scores, total)}``: the mean of the raters' standing scores.

    Empty for a project without zone scores (what the DICOM reports carry).
    """
    scheme = project.scoring
    if scheme is None:
        return {}
    per_image = {}
    with project.db.connect() as conn:
        for image_id, scores in conn.execute(
            "SELECT image_id, scores FROM labels WHERE id IN (SELECT MAX(id) FROM labels "
            "GROUP BY image_id, rater_id) AND label IS NOT NULL AND scores IS NOT NULL"
        ):
            per_image.setdefault(image_id, []).append(scheme.zone_scores(json.loads(scores)))
    out = {}
    for image_id, zones in per_image.items():
        means = [sum(z) / len(zones) for z in zip(*zones)]
        out[image_id] = (scheme, means, sum(means))
    return out


def export_rows(project):
    """The CSV's header and rows (see the module's docstring)."""
    with project.db.connect() as conn:
        states = project.queue.image_states(conn)
        ids, codes = project.labeled_set(conn)
        raters = project.rater_store.names_by_id(conn)
        images = project.image_store.files(conn)
        rounds = project.rounds()
        labels = {
            (r["image_id"], r["rater_id"]): r
            for r in conn.execute(
                "SELECT * FROM labels WHERE id IN (SELECT MAX(id) FROM labels "
                "GROUP BY image_id, rater_id) AND label IS NOT NULL"
            )
        }
        # a film labeled, undone and labeled again took the time of every reading
        spent = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                "SELECT image_id, rater_id, SUM(seconds) FROM labels WHERE label IS NOT NULL "
                "AND seconds IS NOT NULL GROUP BY image_id, rater_id"
            )
        }
        # likewise a decision and its revisions by one adjudicator; a correction or a
        # revision made from the corrections panel (no film read there) has no seconds
        adjudicated = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                "SELECT image_id, rater_id, SUM(seconds) FROM adjudications "
                "WHERE seconds IS NOT NULL GROUP BY image_id, rater_id"
            )
        }
        study_dates = dict(conn.execute("SELECT id, study_date FROM images"))
        skips = {}
        for image_id, rater_id in conn.execute(
            "SELECT image_id, rater_id FROM assignments WHERE state = 'skipped' "
            "ORDER BY image_id, rater_id"
        ):
            skips.setdefault(image_id, []).append(raters[rater_id])
        times = project.label_store.time_span(conn)
        decided = project.review.decided(conn)
    queried = _query_info(rounds)
    names = list(raters.values())
    header = [
        "filename",
        "label",
        "consensus",
        "adjudicator",
        "adjudication_note",
        "patient",
        "study_date",
        "round",
        "queue",
        "model_version",
        "query_rank",
        "acquisition_score",
        "n_labels",
        "n_skips",
        "skipped_by",
        "first_labeled_at",
        "last_labeled_at",
    ] + [f"{what}_{n}" for n in names for what in ("rater", "note", "seconds")]
    scheme = project.scoring
    header += _score_header(scheme, names)
    header += ["adjudication_seconds"]  # added last: the columns before keep their places
    rows = []
    for image_id, code in zip(ids.tolist(), codes.tolist()):
        s = states[image_id]
        relpath, patient = images[image_id]
        votes = {rid: lab for rid, lab in s["labels"].items()}
        adj = decided.get(image_id)
        model, rank, score = queried.get(image_id, ("", "", None))
        row = [
            relpath,
            project.classes[code],
            _how(project, votes, code, adj),
            adj["adjudicator"] if adj else "",
            (adj["note"] or "") if adj else "",
            patient or "",
            study_dates.get(image_id) or "",
            s["round"],
            s["kind"],
            model,
            rank,
            "" if score is None else repr(score),
            len(votes),
            len(skips.get(image_id, [])),
            ";".join(skips.get(image_id, [])),
            *times.get(image_id, ("", "")),
        ]
        for rid in raters:
            lab = labels.get((image_id, rid))
            row += (
                ["", "", ""]
                if lab is None
                else [
                    lab["label"],
                    lab["note"] or "",
                    _seconds(spent.get((image_id, rid))),
                ]
            )
        row += _score_cells(scheme, [labels.get((image_id, rid)) for rid in raters])
        row.append("" if adj is None else _seconds(adjudicated.get((image_id, adj["rater_id"]))))
        rows.append(row)
    return header, rows


def _seconds(value):
    return "" if value is None else repr(float(value))


def write_csv(project, path):
    """Write the labels CSV, replaced atomically; returns the number of rows."""
    header, rows = export_rows(project)
    with (
        replacing(path, mode=EXPORT_MODE) as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as f,
    ):
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def audit_events(project):
    """Every recorded event as a dict, oldest first (``event`` names its kind)."""
    events = []
    with project.db.connect() as conn:
        raters = project.rater_store.names_by_id(conn)
        files = project.image_store.files(conn)
        for r in project.queue.round_rows(conn):
            d = dict(r)
            for key in ("queried", "scores", "reserve", "class_counts", "stop_predictions"):
                d[key] = None if d[key] is None else json.loads(d[key])
            events.append({"event": "round", **d})
        previous = {}
        for r in conn.execute("SELECT * FROM labels ORDER BY id"):
            d = dict(r)
            previous[d["id"]] = d["label"]
            if d["label"] is None:
                d["event"] = "undo"
            elif d["supersedes"] is not None:  # a correction: the old and the new value
                d["event"] = "correction"
                d["previous_label"] = previous.get(d["supersedes"])
            else:
                d["event"] = "label"
            scores = d.pop("scores", None)  # only in projects with zone scores
            if scores is not None:
                d["scores"] = json.loads(scores)
            d["label_id"] = d.pop("id")
            events.append(d)
        for r in conn.execute("SELECT * FROM assignments ORDER BY opened_at"):
            events.append({"event": "assignment", **dict(r), "created_at": r["opened_at"]})
        decided = {}
        for r in conn.execute("SELECT * FROM adjudications ORDER BY id"):
            d = dict(r)
            decided[d["id"]] = d["label"]
            d["adjudication_id"] = d.pop("id")
            if d.get("supersedes") is None:
                d.pop("supersedes", None)  # as before revisions existed
                events.append({"event": "adjudication", **d})
            else:  # a revised decision
                d["previous_label"] = decided.get(d["supersedes"])
                events.append({"event": "adjudication_revision", **d})
        for r in conn.execute("SELECT * FROM deferrals ORDER BY id"):
            d = dict(r)
            d["deferral_id"] = d.pop("id")
            events.append({"event": "deferral", **d})
        for r in conn.execute("SELECT * FROM skips ORDER BY id"):
            d = dict(r)
            d["skip_id"] = d.pop("id")
            events.append({"event": "skip", **d})
    for e in events:
        if "rater_id" in e:
            e["rater"] = raters[e.pop("rater_id")]
        if "image_id" in e:
            e["filename"] = files[e["image_id"]][0]
            e["image_id"] = str(e["image_id"])
    events.sort(key=lambda e: e["created_at"])
    return events


def write_jsonl(project, path):
    """Write the audit trail as JSON lines, replaced atomically; returns the number of events."""
    events = audit_events(project)
    atomic_write(
        path,
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events),
        mode=EXPORT_MODE,
    )
    return len(events)


#: The writer of each export format.
WRITERS = {"csv": write_csv, "jsonl": write_jsonl}
