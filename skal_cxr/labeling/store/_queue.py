"""The queue of a project: rounds, queued images, who holds which (leases), the reserve.

Images are queued by rounds (``kind='batch'``) or taken one at a time from
the latest round's reserve (``kind='reserve'``) while the next batch is
being computed. An image is handed to a rater by an open assignment; one
held longer than ``lease_seconds`` goes to another rater who asks.
"""

import json
from datetime import datetime, timedelta, timezone

from ._db import utcnow

__all__ = ["Queue"]


class Queue:
    """The rounds, queue and assignments tables of a project.

    Every method takes the connection to work in, so that a caller's reads
    and writes form one transaction.

    Parameters
    ----------
    labels_per_image : int
        Labels each queued image gets.
    lease_seconds : float or None
        How long a rater may hold an image open (``None``: forever).
    """

    def __init__(self, labels_per_image, lease_seconds):
        self.labels_per_image = labels_per_image
        self.lease_seconds = lease_seconds

    # -- rounds ---------------------------------------------------------------
    def insert_round(
        self,
        conn,
        *,
        round_,
        strategy,
        queried,
        n_labeled,
        class_counts,
        scores=None,
        reserve=(),
        fit_time=None,
        query_time=None,
        stop_predictions=None,
    ):
        """Record a round and queue its batch ``queried`` (image ids) after the queue.

        Parameters
        ----------
        conn : sqlite3.Connection
            The connection (its transaction).
        round_ : int
            The round.
        strategy : str
            The strategy (or cold start) that chose the batch.
        queried : sequence of int
            Image ids of the batch, in queue order.
        n_labeled : int
            Images the round's model was trained on (0: the cold start).
        class_counts : sequence of int
            Their consensus count per class.
        scores : sequence of float or None, default=None
            The strategy's score of each queried image.
        reserve : sequence of int, default=()
            Image ids of the reserve.
        fit_time, query_time : float or None, default=None
            Seconds (None: no model, or nothing queried).
        stop_predictions : sequence of int or None, default=None
            The model's class codes of the stop set (None: no model).
        """
        conn.execute(
            "INSERT INTO rounds (round, strategy, queried, scores, reserve, n_labeled, "
            "class_counts, fit_time, query_time, stop_predictions, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                round_,
                strategy,
                json.dumps([int(i) for i in queried]),
                None if scores is None else json.dumps([float(s) for s in scores]),
                json.dumps([int(i) for i in reserve]),
                int(n_labeled),
                json.dumps([int(c) for c in class_counts]),
                fit_time,
                query_time,
                None
                if stop_predictions is None
                else json.dumps([int(p) for p in stop_predictions]),
                utcnow(),
            ),
        )
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
        conn.executemany(
            "INSERT INTO queue (image_id, round, kind, seq) VALUES (?, ?, 'batch', ?)",
            [(int(i), round_, seq + k + 1) for k, i in enumerate(queried)],
        )

    def has_round(self, conn, round_):
        """Whether round ``round_`` is recorded."""
        return (
            conn.execute("SELECT 1 FROM rounds WHERE round = ?", (round_,)).fetchone() is not None
        )

    def set_reserve(self, conn, round_, reserve):
        """Replace the reserve (image ids) of round ``round_``."""
        conn.execute(
            "UPDATE rounds SET reserve = ? WHERE round = ?",
            (json.dumps([int(i) for i in reserve]), round_),
        )

    def latest_round(self, conn):
        """The row of the latest round."""
        return conn.execute("SELECT * FROM rounds ORDER BY round DESC LIMIT 1").fetchone()

    def round_rows(self, conn):
        """Every round row, oldest first."""
        return conn.execute("SELECT * FROM rounds ORDER BY round").fetchall()

    @staticmethod
    def finished(latest):
        """The loop is over: the latest round queried nothing (budget or pool exhausted)."""
        return latest["round"] > 0 and not json.loads(latest["queried"])

    def round_ready(self, conn):
        """The latest round, if its batch is complete and the loop goes on; else None."""
        latest = self.latest_round(conn)
        if self.finished(latest):
            return None
        states = self.image_states(conn)
        batch = [
            s for s in states.values() if s["round"] == latest["round"] and s["kind"] == "batch"
        ]
        if not batch or not all(s["done"] for s in batch):
            return None
        return latest

    # -- the queue ------------------------------------------------------------
    def queued_ids(self, conn):
        """Image ids in queue order."""
        return [r[0] for r in conn.execute("SELECT image_id FROM queue ORDER BY seq")]

    def queued_count(self, conn):
        """Number of images queued."""
        return conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0]

    def current_labels(self, conn):
        """``(image_id, rater_id, label)`` of every standing label (latest row not an undo)."""
        return conn.execute(
            "SELECT image_id, rater_id, label FROM labels WHERE id IN "
            "(SELECT MAX(id) FROM labels GROUP BY image_id, rater_id) AND label IS NOT NULL "
            "ORDER BY image_id, id"
        ).fetchall()

    def image_states(self, conn):
        """Per queued image: seq, round, kind, labels (rater -> label), open and done raters."""
        k = self.labels_per_image
        n_raters = conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
        states = {}
        for r in conn.execute("SELECT image_id, round, kind, seq FROM queue ORDER BY seq"):
            states[r[0]] = {
                "seq": r[3],
                "round": r[1],
                "kind": r[2],
                "labels": {},
                "open": set(),
                "seen": set(),
            }
        for image_id, rater_id, state in conn.execute(
            "SELECT image_id, rater_id, state FROM assignments"
        ):
            s = states[image_id]
            s["seen"].add(rater_id)
            if state == "open":
                s["open"].add(rater_id)
        for image_id, rater_id, label in self.current_labels(conn):
            states[image_id]["labels"][rater_id] = label
        for s in states.values():
            n_lab = len(s["labels"])
            s["done"] = n_lab >= k or (not s["open"] and len(s["seen"]) >= n_raters > 0)
        return states

    # -- handing out images ------------------------------------------------------
    def next_for(self, conn, rid, budget):
        """The image rater ``rid`` should label next, assigning it (in ``conn``'s transaction).

        Returns
        -------
        next : dict
            ``image_id`` (str or None), ``reason`` (None, ``"waiting"`` or
            ``"done"``), ``round``, ``from_previous_model`` (bool).
        """
        k = self.labels_per_image
        latest = self.latest_round(conn)
        row = conn.execute(
            "SELECT a.image_id, q.round, q.kind FROM assignments a JOIN queue q "
            "ON q.image_id = a.image_id WHERE a.rater_id = ? AND a.state = 'open' "
            "ORDER BY q.seq LIMIT 1",
            (rid,),
        ).fetchone()
        if row is not None:
            return _next(row[0], row[1], row[2])
        self.expire_leases(conn, rid)
        states = self.image_states(conn)
        for image_id, s in states.items():  # in queue order
            active = len(s["labels"]) + len(s["open"] - set(s["labels"]))
            if not s["done"] and rid not in s["seen"] and active < k:
                self.assign(conn, image_id, rid)
                return _next(image_id, s["round"], s["kind"])
        if not self.finished(latest):  # a next batch will come
            image_id = self.take_reserve(conn, latest, states, budget)
            if image_id is not None:
                self.assign(conn, image_id, rid)
                return _next(image_id, latest["round"], "reserve")
            return {
                "image_id": None,
                "reason": "waiting",
                "round": latest["round"],
                "from_previous_model": False,
            }
        return {
            "image_id": None,
            "reason": "done",
            "round": latest["round"],
            "from_previous_model": False,
        }

    def ahead_for(self, conn, rid, n):
        """Up to ``n`` images rater ``rid`` will get after the current one, assigned now.

        For prefetching: images already held open beyond the first, then
        batch images nobody holds, as long as at least as many such images
        stay free for the other raters (nobody waits because of a prefetch).
        Returns their ids (str), in queue order.
        """
        held = [
            r[0]
            for r in conn.execute(
                "SELECT a.image_id FROM assignments a JOIN queue q ON q.image_id = a.image_id "
                "WHERE a.rater_id = ? AND a.state = 'open' ORDER BY q.seq",
                (rid,),
            )
        ][1:]
        if len(held) < n:
            n_others = conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0] - 1
            free = [
                i
                for i, s in self.image_states(conn).items()
                if not s["done"]
                and s["kind"] == "batch"
                and not s["open"]
                and rid not in s["seen"]
                and len(s["labels"]) < self.labels_per_image
            ]
            while len(held) < n and len(free) > n_others:
                image_id = free.pop(0)
                self.assign(conn, image_id, rid)
                held.append(image_id)
        return [str(i) for i in held[:n]]

    def reserve_ahead(self, conn, rid, n, current, budget):
        """Past the end of rater ``rid``'s share of the batch: up to ``n`` reserve images he
        gets next, assigned now, so that his page fetches them while he reads the last
        batch film ``current`` (the first film after a batch comes from memory, not from
        the network). Returns their ids (str); none while batch images may still be his."""
        if n <= 0:
            return []
        latest = self.latest_round(conn)
        if self.finished(latest):
            return []
        states = self.image_states(conn)
        for image_id, s in states.items():  # batch images this rater may still get: not yet
            if str(image_id) == current or rid in s["open"]:
                continue
            if not s["done"] and rid not in s["seen"] and len(s["labels"]) < self.labels_per_image:
                return []
        out = []
        while len(out) < n:
            image_id = self.take_reserve(conn, latest, states, budget)
            if image_id is None:
                break
            self.assign(conn, image_id, rid)
            states = self.image_states(conn)
            out.append(str(image_id))
        return out

    def assign(self, conn, image_id, rid):
        """Open an assignment of ``image_id`` to rater ``rid``."""
        conn.execute(
            "INSERT INTO assignments (image_id, rater_id, state, opened_at) "
            "VALUES (?, ?, 'open', ?)",
            (image_id, rid, utcnow()),
        )

    def expire_leases(self, conn, rid):
        """Take back images other raters have held open longer than ``lease_seconds``."""
        if self.lease_seconds is None:
            return
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=self.lease_seconds)).isoformat(
            timespec="microseconds"
        )
        conn.execute(
            "UPDATE assignments SET state = 'expired' WHERE state = 'open' AND "
            "rater_id != ? AND opened_at < ?",
            (rid, cutoff),
        )

    def take_reserve(self, conn, latest, states, budget):
        """Queue the latest round's next reserve image not queued yet; return it (or None)."""
        if self.queued_count(conn) >= budget:
            return None
        for image_id in json.loads(latest["reserve"]):
            if image_id in states:
                continue
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
            conn.execute(
                "INSERT INTO queue (image_id, round, kind, seq) VALUES (?, ?, 'reserve', ?)",
                (image_id, latest["round"], seq + 1),
            )
            return image_id
        return None

    def assignment(self, conn, image_id, rid):
        """``(state, round, queue kind)`` of rater ``rid``'s assignment of an image, or None."""
        return conn.execute(
            "SELECT a.state, q.round, q.kind FROM assignments a JOIN queue q "
            "ON q.image_id = a.image_id WHERE a.image_id = ? AND a.rater_id = ?",
            (image_id, rid),
        ).fetchone()

    def set_assignment(self, conn, image_id, rid, state, reopen=False):
        """Set the state of rater ``rid``'s assignment (``reopen``: hand it out anew now)."""
        if reopen:
            conn.execute(
                "UPDATE assignments SET state = ?, opened_at = ? WHERE image_id = ? "
                "AND rater_id = ?",
                (state, utcnow(), image_id, rid),
            )
        else:
            conn.execute(
                "UPDATE assignments SET state = ? WHERE image_id = ? AND rater_id = ?",
                (state, image_id, rid),
            )


def _next(image_id, round_, kind):
    return {
        "image_id": str(image_id),
        "reason": None,
        "round": round_,
        "from_previous_model": kind == "reserve",
    }
