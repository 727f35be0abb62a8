"""A labeling project: a folder with one SQLite database, checkpoints and previews.

:class:`LabelingProject` is the whole labeling loop as a Python object; the
web app and the ``skal-cxr label`` commands are thin layers over it.
"""

import csv
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

import numpy as np

from .._validation import check_int
from ..datasets._agreement import CONSENSUS, consensus_codes, fleiss_kappa
from ._db import DB_FILE, SCHEMA_VERSION, connect, create_schema, transaction, utcnow
from ._errors import Conflict, Forbidden, InvalidLabel, LabelingError, NotFound
from ._images import display_pixels, find_images, window_png

__all__ = [
    "LabelingProject", "init_project", "open_project", "LabelingError", "NotFound",
    "Conflict", "Forbidden", "InvalidLabel", "COLD_STARTS",
]

COLD_STARTS = ("random", "k_center")
PREVIEW_DIR, CHECKPOINT_DIR, CACHE_DIR = "previews", "checkpoints", "cache"


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _check_int(value, name, minimum):
    return check_int(value, name, minimum, error=LabelingError)


def init_project(path, image_dir, classes, *, csv=None, image_column="filename",
                 group_column=None, labels_per_image=1, strategy="mean_std",
                 batch_size=20, initial_size=None, budget=None, image_size=64,
                 class_weight=None, consensus="majority", cold_start="random",
                 reserve_size=None, lease_seconds=3600, show_prediction=False,
                 stop_set_size=1000,
                 stop_window=3, stop_threshold=0.99, n_mc_samples=20, pool_size=None,
                 estimator=None, training=None, torch_threads=1, random_state=0, n_jobs=None,
                 progress=False):
    """Create a labeling project in the new folder ``path``.

    Registers every image (path relative to ``image_dir`` and SHA-256 of its
    bytes), decodes them once into the project's on-disk image cache
    (``cache/images-HxW/``, see :func:`~skal_cxr.datasets.build_image_cache`),
    draws the fixed stop set and queues the first batch (the cold start: no
    model exists yet). Training and queries read the images from that cache
    (a memory map), so memory does not grow with the pool. An interrupted
    ``init_project`` (even killed) resumes the cache where it stopped when
    called again with the same folder.

    Parameters
    ----------
    path : path-like
        The project folder; it must not exist or be empty.
    image_dir : path-like
        Folder of PNG / JPEG / DICOM images, which stay where they are.
    classes : list of str
        Class names, ordered from least to most severe (the consensus rules
        use this order).
    csv : path-like, default=None
        CSV listing the images (column ``image_column``, paths relative to
        ``image_dir``) and optionally a patient column ``group_column``;
        ``None`` takes every image file under ``image_dir``, sorted by path.
    image_column : str, default="filename"
        The column of ``csv`` holding the image paths.
    group_column : str, default=None
        The column of ``csv`` naming each image's patient, if any.
    labels_per_image : int, default=1
        Labels each queried image gets, from different raters.
    strategy : str, default="mean_std"
        A key of :data:`skal_cxr.strategies.STRATEGIES`.
    batch_size : int, default=20
        Images queried per round.
    initial_size : int, default=None
        Size of the cold-start batch (``batch_size``).
    budget : int, default=None
        Images to label in all (``None``: the whole pool).
    image_size : int, default=64
        Training resolution (images are resized, see
        :func:`~skal_cxr.datasets.load_image_folder`); raters see the
        original files.
    class_weight : {None, "balanced"}, default=None
    consensus : {"majority", "mean", "max"}, default="majority"
        How several raters' labels become one (see
        :func:`~skal_cxr.datasets.load_image_folder`).
    cold_start : {"random", "k_center"}, default="random"
        The first batch: a uniform random draw, or greedy k-center on the
        embeddings of the untrained network.
    reserve_size : int, default=None
        Next-ranked images kept per round for raters who run out before the
        next batch is ready (``batch_size``); 0 makes them wait instead.
    lease_seconds : float or None, default=3600
        An image a rater has held open this long without labeling it goes to
        another rater who asks for work (the first one's label is then
        refused); ``None`` keeps it with the rater forever.
    show_prediction : bool, default=False
        Show raters the model's prediction (it biases them: off by default).
    stop_set_size : int, default=1000
        Images of the fixed stop set of the stopping signal.
    stop_window, stop_threshold : int, float, default=3, 0.99
        Stop when the mean Cohen's kappa between successive models on the
        stop set, over the last ``stop_window`` pairs, reaches ``stop_threshold``.
    n_mc_samples, pool_size, estimator, training, torch_threads
        As in :func:`skal_cxr.simulation.simulate`.
    random_state : int, default=0
        Seeds the cold start, the stop set, the network and the queries
        exactly like a simulation seed.
    n_jobs : int, default=None
        Threads decoding the images into the cache (``None``: 1,
        ``-1``: every core).
    progress : bool, default=False
        Show a progress bar of the cache build.

    Returns
    -------
    project : LabelingProject
    """
    from ..simulation import ConfigError, resolve_config

    path = Path(path)
    if path.exists() and not _only_a_cache(path):
        raise LabelingError(f"{path} exists and is not empty; choose a new project folder.")
    classes = [str(c).strip() for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(classes):
        raise LabelingError(f"classes must be at least two distinct names; got {classes}.")
    labels_per_image = _check_int(labels_per_image, "labels_per_image", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    initial_size = batch_size if initial_size is None else _check_int(
        initial_size, "initial_size", 1)
    reserve_size = batch_size if reserve_size is None else _check_int(
        reserve_size, "reserve_size", 0)
    stop_set_size = _check_int(stop_set_size, "stop_set_size", 1)
    stop_window = _check_int(stop_window, "stop_window", 1)
    random_state = _check_int(random_state, "random_state", 0)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(
            n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1):
        raise LabelingError(f"n_jobs must be None, -1 or a positive integer; got {n_jobs!r}.")
    if consensus not in CONSENSUS:
        raise LabelingError(f"consensus must be one of {CONSENSUS}; got {consensus!r}.")
    if cold_start not in COLD_STARTS:
        raise LabelingError(f"cold_start must be one of {COLD_STARTS}; got {cold_start!r}.")
    if lease_seconds is not None and not float(lease_seconds) > 0:
        raise LabelingError(f"lease_seconds must be positive or None; got {lease_seconds!r}.")
    if not 0 < float(stop_threshold) <= 1:
        raise LabelingError(f"stop_threshold must be in (0, 1]; got {stop_threshold!r}.")
    try:
        sim = resolve_config(
            strategies=[strategy], seeds=[random_state], n_initial=initial_size,
            query_size=batch_size, budget=budget if budget is not None else initial_size,
            n_mc_samples=n_mc_samples, pool_size=pool_size, class_weight=class_weight,
            estimator=estimator, training=training, torch_threads=torch_threads,
        )
    except ConfigError as exc:
        raise LabelingError(str(exc)) from exc
    from ..datasets._image_io import check_image_size

    try:
        image_size = list(check_image_size(image_size))
        rows = find_images(image_dir, csv, image_column, group_column)
    except ValueError as exc:
        raise LabelingError(str(exc)) from exc
    image_dir = Path(image_dir).resolve()
    n = len(rows)
    if initial_size > n:
        raise LabelingError(f"initial_size ({initial_size}) is larger than the pool ({n} images).")
    config = {
        "name": path.resolve().name, "image_dir": str(image_dir),
        "csv": None if csv is None else str(Path(csv).resolve()),
        "classes": classes, "labels_per_image": labels_per_image, "strategy": strategy,
        "batch_size": batch_size, "initial_size": initial_size,
        "budget": None if budget is None else int(min(budget, n)) if budget >= 1
        else int(round(budget * n)),
        "image_size": image_size, "consensus": consensus, "cold_start": cold_start,
        "reserve_size": reserve_size, "show_prediction": bool(show_prediction),
        "lease_seconds": None if lease_seconds is None else float(lease_seconds),
        "stop_set_size": min(stop_set_size, n), "stop_window": stop_window,
        "stop_threshold": float(stop_threshold), "random_state": random_state,
        "simulation": {k: sim[k] for k in ("n_mc_samples", "pool_size", "class_weight",
                                           "warm_start", "estimator", "training",
                                           "torch_threads")},
    }
    if config["budget"] is not None and config["budget"] < initial_size:
        raise LabelingError(f"budget ({config['budget']}) is smaller than the first batch "
                            f"({initial_size}).")
    from ._loop import build_pool_cache

    # one pass over the files: the cache records each one's SHA-256
    cache = build_pool_cache(path, image_size, [image_dir / rel for rel, _ in rows],
                             n_jobs=n_jobs, progress=progress)
    hashes = [entry["sha256"] for entry in cache.index]
    for sub in (PREVIEW_DIR, CHECKPOINT_DIR, CACHE_DIR):
        (path / sub).mkdir(exist_ok=True)
    conn = connect(path / DB_FILE)
    try:
        create_schema(conn)
        stop_set = np.sort(np.random.default_rng([random_state, 1]).choice(
            n, config["stop_set_size"], replace=False)) + 1
        with transaction(conn):
            conn.executemany(
                "INSERT INTO images (id, relpath, sha256, patient) VALUES (?, ?, ?, ?)",
                [(i + 1, rel, h, patient) for i, ((rel, patient), h) in
                 enumerate(zip(rows, hashes))],
            )
            conn.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config),))
            conn.execute("INSERT INTO meta VALUES ('stop_set', ?)",
                         (json.dumps(stop_set.tolist()),))
    finally:
        conn.close()
    project = LabelingProject(path)
    project._cold_start()
    return project


def _only_a_cache(path):
    """Whether ``path`` is empty or holds just the image cache of an interrupted init."""
    found = list(path.iterdir())
    if not found:
        return True
    if [p.name for p in found] != [CACHE_DIR] or (path / DB_FILE).exists():
        return False
    return all(p.name.startswith("images-") for p in (path / CACHE_DIR).iterdir())


def open_project(path):
    """Open an existing labeling project (see :class:`LabelingProject`).

    Parameters
    ----------
    path : path-like
        The project folder made by :func:`init_project`.

    Returns
    -------
    project : LabelingProject
        The project.
    """
    return LabelingProject(path)


class LabelingProject:
    """A labeling project folder: images, raters, labels, rounds and models.

    Open one with :func:`open_project` (or this class) and create one with
    :func:`init_project`. Methods that act for a rater take the rater's name;
    the web app maps tokens to names. Every method opens its own database
    connection, so one object may be shared by threads, and several
    processes may open the same project.

    Parameters
    ----------
    path : path-like
        The project folder.

    Attributes
    ----------
    path : Path
    config : dict
        The settings given to :func:`init_project`.
    classes : list of str
    score_scheduler : str or None
        Address of a Dask scheduler on which training rounds score the pool
        (:class:`~skal_cxr.MCDropoutCNN` ``scheduler=``; ``skal-cxr label
        serve --score-scheduler``). A setting of this process, not of the
        project; ``None`` (the default) scores here.
    """

    def __init__(self, path):
        self.path = Path(path)
        db = self.path / DB_FILE
        if not db.is_file():
            raise LabelingError(f"{self.path} is not a labeling project (no {DB_FILE}).")
        with self._connect() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta.get("schema_version", 0))
        if version != SCHEMA_VERSION:
            raise LabelingError(
                f"{db} has schema version {version}; this skal_cxr reads version "
                f"{SCHEMA_VERSION}.")
        self.config = json.loads(meta["config"])
        self.stop_set = json.loads(meta["stop_set"])
        self.classes = list(self.config["classes"])
        self.name = self.config["name"]
        self._lock = threading.Lock()
        self._pool = None
        self._models = {}
        self.score_scheduler = None
        from ._loop import TrainingState

        self.training = TrainingState()

    def __repr__(self):
        return f"LabelingProject({str(self.path)!r})"

    # -- database -------------------------------------------------------------
    def _connect(self):
        conn = connect(self.path / DB_FILE)
        return _Closing(conn)

    # -- raters ---------------------------------------------------------------
    def add_rater(self, name):
        """Add a rater; returns the rater's secret token (shown only now).

        Only the token's SHA-256 is stored. The rater's link is
        ``http://HOST:PORT/#token=TOKEN``.

        Parameters
        ----------
        name : str
            1 to 100 characters, without commas, tabs or newlines; unique.

        Returns
        -------
        token : str
            The rater's secret token.
        """
        name = str(name).strip()
        if not name or len(name) > 100 or any(ch in name for ch in "\r\n\t,"):
            raise LabelingError(f"rater name must be 1-100 characters without commas, tabs "
                                f"or newlines; got {name!r}.")
        token = secrets.token_urlsafe(32)
        with self._connect() as conn, transaction(conn):
            if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a rater named {name!r} already exists.")
            conn.execute("INSERT INTO raters (name, token_sha256, created_at) VALUES (?, ?, ?)",
                         (name, _token_hash(token), utcnow()))
        return token

    def raters(self):
        """Names of the raters, in the order they were added.

        Returns
        -------
        names : list of str
            The raters' names.
        """
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM raters ORDER BY id")]

    def rater_for_token(self, token):
        """The rater's name for a token, or ``None`` (compared in constant time).

        Parameters
        ----------
        token : str or None
            A token from :meth:`add_rater`.

        Returns
        -------
        name : str or None
            ``None`` when no rater has this token.
        """
        if not token:
            return None
        digest = _token_hash(token)
        with self._connect() as conn:
            rows = conn.execute("SELECT name, token_sha256 FROM raters").fetchall()
        found = None
        for name, stored in rows:
            if hmac.compare_digest(stored, digest):
                found = name
        return found

    def _rater_id(self, conn, rater):
        row = conn.execute("SELECT id FROM raters WHERE name = ?", (rater,)).fetchone()
        if row is None:
            raise NotFound(f"no rater named {rater!r}.")
        return row[0]

    # -- images ---------------------------------------------------------------
    def _image_row(self, conn, image_id):
        key = _parse_image_id(image_id)
        row = None if key is None else conn.execute(
            "SELECT * FROM images WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise NotFound("no such image.")
        return row

    def image_path(self, image_id):
        """The file of an image, checked to be inside the image folder.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        path : pathlib.Path
            The image file.
        """
        with self._connect() as conn:
            row = self._image_row(conn, image_id)
        root = Path(self.config["image_dir"])
        path = root / row["relpath"]
        real = os.path.realpath(path)
        if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
            raise NotFound("no such image.")
        return path

    def image_pixels(self, image_id):
        """``(pixels uint16 (H, W), window_center, window_width)`` of an image.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        pixels : ndarray of shape (H, W), dtype uint16
            The image's pixels.
        window_center, window_width : float
            Its default display window.
        """
        return display_pixels(self.image_path(image_id))

    def image_png(self, image_id):
        """8-bit PNG bytes of an image in its default window (cached in ``previews/``).

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        png : bytes
            The PNG file's content.
        """
        with self._connect() as conn:
            row = self._image_row(conn, image_id)
        cached = self.path / PREVIEW_DIR / f"{row['id']}-{row['sha256'][:16]}.png"
        if cached.is_file():
            return cached.read_bytes()
        data = window_png(*self.image_pixels(image_id))
        tmp = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
        return data

    def image_table(self):
        """``[(image_id, relpath, sha256, patient), ...]`` in pool order.

        Returns
        -------
        table : list of tuple
            One ``(image_id, relpath, sha256, patient)`` per image;
            ``patient`` is ``None`` without a patient column.
        """
        with self._connect() as conn:
            return [(str(r[0]), r[1], r[2], r[3]) for r in
                    conn.execute("SELECT id, relpath, sha256, patient FROM images ORDER BY id")]

    # -- the queue ------------------------------------------------------------
    def _cold_start(self):
        from ._loop import cold_start

        batch, reserve, strategy = cold_start(self)
        with self._connect() as conn, transaction(conn):
            self._insert_round(conn, 0, strategy, batch, None, reserve, 0,
                               [0] * len(self.classes), None, None, None)

    def _insert_round(self, conn, round_, strategy, queried, scores, reserve, n_labeled,
                      class_counts, fit_time, query_time, stop_predictions):
        conn.execute(
            "INSERT INTO rounds (round, strategy, queried, scores, reserve, n_labeled, "
            "class_counts, fit_time, query_time, stop_predictions, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (round_, strategy, json.dumps([int(i) for i in queried]),
             None if scores is None else json.dumps([float(s) for s in scores]),
             json.dumps([int(i) for i in reserve]), int(n_labeled),
             json.dumps([int(c) for c in class_counts]), fit_time, query_time,
             None if stop_predictions is None else json.dumps(
                 [int(p) for p in stop_predictions]), utcnow()))
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
        conn.executemany(
            "INSERT INTO queue (image_id, round, kind, seq) VALUES (?, ?, 'batch', ?)",
            [(int(i), round_, seq + k + 1) for k, i in enumerate(queried)])

    def _latest_round(self, conn):
        return conn.execute("SELECT * FROM rounds ORDER BY round DESC LIMIT 1").fetchone()

    def _image_states(self, conn):
        """Per queued image: seq, round, kind, labels (rater -> label), open and done raters."""
        k = self.config["labels_per_image"]
        n_raters = conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
        states = {}
        for r in conn.execute("SELECT image_id, round, kind, seq FROM queue ORDER BY seq"):
            states[r[0]] = {"seq": r[3], "round": r[1], "kind": r[2], "labels": {},
                            "open": set(), "seen": set()}
        for image_id, rater_id, state in conn.execute(
                "SELECT image_id, rater_id, state FROM assignments"):
            s = states[image_id]
            s["seen"].add(rater_id)
            if state == "open":
                s["open"].add(rater_id)
        for image_id, rater_id, label in self._current_labels(conn):
            states[image_id]["labels"][rater_id] = label
        for s in states.values():
            n_lab = len(s["labels"])
            s["done"] = n_lab >= k or (not s["open"] and len(s["seen"]) >= n_raters > 0)
        return states

    def _current_labels(self, conn):
        """``(image_id, rater_id, label)`` of every standing label (latest row not an undo)."""
        return conn.execute(
            "SELECT image_id, rater_id, label FROM labels WHERE id IN "
            "(SELECT MAX(id) FROM labels GROUP BY image_id, rater_id) AND label IS NOT NULL "
            "ORDER BY image_id, id").fetchall()

    def next_image(self, rater):
        """The image this rater should label next, assigning it (see the API docs).

        Parameters
        ----------
        rater : str
            The rater's name.

        Returns
        -------
        next : dict
            ``image_id`` (str or None), ``reason`` (None, ``"waiting"`` or
            ``"done"``), ``round``, ``from_previous_model`` (bool).
        """
        k = self.config["labels_per_image"]
        with self._connect() as conn, transaction(conn):
            rid = self._rater_id(conn, rater)
            latest = self._latest_round(conn)
            row = conn.execute(
                "SELECT a.image_id, q.round, q.kind FROM assignments a JOIN queue q "
                "ON q.image_id = a.image_id WHERE a.rater_id = ? AND a.state = 'open' "
                "ORDER BY q.seq LIMIT 1", (rid,)).fetchone()
            if row is not None:
                return self._next(row[0], row[1], row[2])
            self._expire_leases(conn, rid)
            states = self._image_states(conn)
            for image_id, s in states.items():  # in queue order
                active = len(s["labels"]) + len(s["open"] - set(s["labels"]))
                if not s["done"] and rid not in s["seen"] and active < k:
                    self._assign(conn, image_id, rid)
                    return self._next(image_id, s["round"], s["kind"])
            if self._next_round_pending(conn, latest, states):
                image_id = self._take_reserve(conn, latest, states, rid)
                if image_id is not None:
                    self._assign(conn, image_id, rid)
                    return self._next(image_id, latest["round"], "reserve")
                return {"image_id": None, "reason": "waiting", "round": latest["round"],
                        "from_previous_model": False}
            reason = "done" if self._finished(conn, latest) else "waiting"
            return {"image_id": None, "reason": reason, "round": latest["round"],
                    "from_previous_model": False}

    @staticmethod
    def _next(image_id, round_, kind):
        return {"image_id": str(image_id), "reason": None, "round": round_,
                "from_previous_model": kind == "reserve"}

    def _assign(self, conn, image_id, rid):
        conn.execute("INSERT INTO assignments (image_id, rater_id, state, opened_at) "
                     "VALUES (?, ?, 'open', ?)", (image_id, rid, utcnow()))

    def _expire_leases(self, conn, rid):
        """Take back images other raters have held open longer than ``lease_seconds``."""
        from datetime import datetime, timedelta, timezone

        lease = self.config.get("lease_seconds")
        if lease is None:
            return
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=lease)).isoformat(
            timespec="microseconds")
        conn.execute("UPDATE assignments SET state = 'expired' WHERE state = 'open' AND "
                     "rater_id != ? AND opened_at < ?", (rid, cutoff))

    def _queued_count(self, conn):
        return conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0]

    def n_images(self):
        """Number of images in the pool.

        Returns
        -------
        n_images : int
            Images registered by :func:`init_project`.
        """
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def _budget(self):
        budget = self.config["budget"]
        return budget if budget is not None else self.n_images()

    def _next_round_pending(self, conn, latest, states):
        """Whether a next batch will come (the loop goes on)."""
        return not self._finished(conn, latest)

    def _finished(self, conn, latest):
        """The loop is over: the latest round queried nothing (budget or pool exhausted)."""
        return latest["round"] > 0 and not json.loads(latest["queried"])

    def _take_reserve(self, conn, latest, states, rid):
        budget = self._budget()
        if self._queued_count(conn) >= budget:
            return None
        for image_id in json.loads(latest["reserve"]):
            if image_id in states:
                continue
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
            conn.execute("INSERT INTO queue (image_id, round, kind, seq) "
                         "VALUES (?, ?, 'reserve', ?)", (image_id, latest["round"], seq + 1))
            return image_id
        return None

    # -- labels ---------------------------------------------------------------
    def submit_label(self, rater, image_id, label, seconds=None, note=None):
        """Record a rater's label of an image assigned to them; committed on return.

        Parameters
        ----------
        rater : str
            The rater's name.
        image_id : str
            The image, assigned to this rater by :meth:`next_image`.
        label : str
            One of the project's classes.
        seconds : float or None, default=None
            Time the rater spent on the image.
        note : str or None, default=None
            A free-text note, at most 2000 characters.

        Returns
        -------
        label : dict
            ``label_id``, ``image_id``, ``label``, ``created_at``.

        Raises
        ------
        InvalidLabel
            ``label`` is not one of the classes.
        NotFound
            No such image.
        Conflict
            The image is not assigned to this rater (or already labeled by them).
        """
        if label not in self.classes:
            raise InvalidLabel(f"label must be one of {self.classes}; got {label!r}.")
        if seconds is not None and not (np.isfinite(seconds) and seconds >= 0):
            raise InvalidLabel(f"seconds must be a finite non-negative number; got {seconds!r}.")
        if note is not None and len(str(note)) > 2000:
            raise InvalidLabel("note is longer than 2000 characters.")
        with self._connect() as conn, transaction(conn):
            rid = self._rater_id(conn, rater)
            img = self._image_row(conn, image_id)["id"]
            row = conn.execute(
                "SELECT a.state, q.round, q.kind FROM assignments a JOIN queue q "
                "ON q.image_id = a.image_id WHERE a.image_id = ? AND a.rater_id = ?",
                (img, rid)).fetchone()
            if row is None or row["state"] != "open":
                why = {"labeled": " (already labeled: undo first)",
                       "expired": " any more (held too long: it went to another rater)"}
                raise Conflict("this image is not assigned to you for labeling"
                               + why.get(row["state"] if row is not None else "", "") + ".")
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO labels (image_id, rater_id, label, supersedes, round, queue_kind, "
                "seconds, note, created_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                (img, rid, label, row["round"], row["kind"],
                 None if seconds is None else float(seconds),
                 None if note is None else str(note), created))
            conn.execute("UPDATE assignments SET state = 'labeled' WHERE image_id = ? "
                         "AND rater_id = ?", (img, rid))
            label_id = cur.lastrowid
        self._after_change()
        return {"label_id": label_id, "image_id": str(img), "label": label,
                "created_at": created}

    def skip(self, rater, image_id):
        """Give an assigned image back; this rater will not see it again.

        Parameters
        ----------
        rater : str
            The rater's name.
        image_id : str
            The image, assigned to this rater.

        Returns
        -------
        skipped : dict
            ``image_id`` and ``skipped`` (True).
        """
        with self._connect() as conn, transaction(conn):
            rid = self._rater_id(conn, rater)
            img = self._image_row(conn, image_id)["id"]
            row = conn.execute("SELECT state FROM assignments WHERE image_id = ? AND "
                               "rater_id = ?", (img, rid)).fetchone()
            if row is None or row["state"] != "open":
                raise Conflict("this image is not assigned to you for labeling.")
            conn.execute("UPDATE assignments SET state = 'skipped' WHERE image_id = ? "
                         "AND rater_id = ?", (img, rid))
        self._after_change()
        return {"image_id": str(img), "skipped": True}

    def undo(self, rater, label_id):
        """Withdraw one's own standing label; the image comes back to this rater next.

        Adds a row superseding the label (labels are never changed or deleted).

        Parameters
        ----------
        rater : str
            The rater's name.
        label_id : int
            The ``label_id`` returned by :meth:`submit_label`.

        Returns
        -------
        undone : dict
            ``label_id``, ``undone`` (True) and ``image_id``.

        Raises
        ------
        NotFound
            No such label.
        Forbidden
            The label is another rater's.
        Conflict
            The label was already withdrawn.
        """
        label_id = _check_label_id(label_id)
        with self._connect() as conn, transaction(conn):
            rid = self._rater_id(conn, rater)
            row = conn.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone()
            if row is None or row["label"] is None:
                raise NotFound("no such label.")
            if row["rater_id"] != rid:
                raise Forbidden("this label is another rater's.")
            latest = conn.execute("SELECT MAX(id) FROM labels WHERE image_id = ? AND "
                                  "rater_id = ?", (row["image_id"], rid)).fetchone()[0]
            if latest != label_id:
                raise Conflict("this label was already withdrawn or replaced.")
            conn.execute(
                "INSERT INTO labels (image_id, rater_id, label, supersedes, round, queue_kind, "
                "seconds, note, created_at) VALUES (?, ?, NULL, ?, ?, ?, NULL, NULL, ?)",
                (row["image_id"], rid, label_id, row["round"], row["queue_kind"], utcnow()))
            conn.execute("UPDATE assignments SET state = 'open', opened_at = ? WHERE "
                         "image_id = ? AND rater_id = ?", (utcnow(), row["image_id"], rid))
        return {"label_id": label_id, "undone": True, "image_id": str(row["image_id"])}

    def labels(self):
        """Every label row (append-only history), oldest first, as dicts.

        Withdrawals (undo) are rows too: a ``supersedes`` and no ``label``.

        Returns
        -------
        labels : list of dict
            ``label_id``, ``image_id``, ``relpath``, ``rater``, ``label``,
            ``supersedes``, ``round``, ``queue_kind``, ``seconds``, ``note``
            and ``created_at`` of each row.
        """
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT l.id AS label_id, l.image_id, i.relpath, r.name AS rater, l.label, "
                "l.supersedes, l.round, l.queue_kind, l.seconds, l.note, l.created_at "
                "FROM labels l JOIN raters r ON r.id = l.rater_id JOIN images i "
                "ON i.id = l.image_id ORDER BY l.id").fetchall()
        out = [dict(r) for r in rows]
        for r in out:
            r["image_id"] = str(r["image_id"])
        return out

    def _after_change(self):
        """A batch may be complete now: let the trainer know."""
        self.training.notify(self)

    # -- consensus, agreement, progress ----------------------------------------
    def labeled_set(self, conn=None):
        """Images with a consensus label, in queue order: ``(image_ids, codes)``.

        An image counts once it has ``labels_per_image`` standing labels, or
        fewer when every rater has seen it (skips); the consensus follows
        the project's ``consensus`` rule on the classes' severity order.

        Parameters
        ----------
        conn : sqlite3.Connection or None, default=None
            A connection to read in (one snapshot with the caller's other
            reads); ``None`` opens one.

        Returns
        -------
        image_ids : ndarray of shape (n_labeled,), dtype int64
            The images.
        codes : ndarray of shape (n_labeled,), dtype int64
            Their consensus class codes (positions in ``classes``).
        """
        if conn is None:
            with self._connect() as conn:
                return self.labeled_set(conn)
        codes = {c: i for i, c in enumerate(self.classes)}
        ids, out = [], []
        for image_id, s in self._image_states(conn).items():
            if s["done"] and s["labels"]:
                votes = np.array([[codes[v] for v in s["labels"].values()]])
                ids.append(image_id)
                out.append(int(consensus_codes(votes, len(self.classes),
                                               self.config["consensus"])[0]))
        return np.array(ids, dtype=np.int64), np.array(out, dtype=np.int64)

    def kappa(self, conn=None):
        """Fleiss' kappa over images with ``labels_per_image >= 2`` standing labels.

        Parameters
        ----------
        conn : sqlite3.Connection or None, default=None
            A connection to read in; ``None`` opens one.

        Returns
        -------
        kappa : float or None
            ``None`` with one label per image, before any image has all its
            labels, or when kappa is undefined.
        """
        if conn is None:
            with self._connect() as conn:
                return self.kappa(conn)
        k = self.config["labels_per_image"]
        if k < 2:
            return None
        codes = {c: i for i, c in enumerate(self.classes)}
        rows = [[codes[v] for v in s["labels"].values()]
                for s in self._image_states(conn).values() if len(s["labels"]) == k]
        if not rows:
            return None
        value = fleiss_kappa(np.array(rows), len(self.classes))
        return None if not np.isfinite(value) else value

    def progress(self):
        """Batch and overall progress (as in ``GET /api/next``), the same for every rater.

        Returns
        -------
        progress : dict
            ``round``, ``batch`` (``done``, ``total``) and ``progress``
            (``labeled``, ``queried``, ``total``, ``budget``).
        """
        with self._connect() as conn:
            latest = self._latest_round(conn)
            states = self._image_states(conn)
            batch = [s for s in states.values() if s["round"] == latest["round"]
                     and s["kind"] == "batch"]
            labeled = sum(1 for s in states.values() if s["done"] and s["labels"])
            return {
                "round": latest["round"],
                "batch": {"done": sum(s["done"] for s in batch), "total": len(batch)},
                "progress": {"labeled": labeled, "queried": len(states),
                             "total": self.n_images(), "budget": self.config["budget"]},
            }

    def rounds(self):
        """The round history, like the simulator's records (one dict per round).

        Returns
        -------
        rounds : list of dict
            The rows of the rounds table, with ``queried``, ``scores``,
            ``reserve``, ``class_counts`` and ``stop_predictions`` decoded and
            ``n_queried`` added.
        """
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM rounds ORDER BY round").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for key in ("queried", "scores", "reserve", "class_counts", "stop_predictions"):
                d[key] = None if d[key] is None else json.loads(d[key])
            d["n_queried"] = len(d["queried"])
            out.append(d)
        return out

    def status(self):
        """Everything ``GET /api/status`` shows, as a dict.

        Returns
        -------
        status : dict
            ``project``, ``classes``, ``raters``, ``kappa``, ``rounds``,
            ``training`` and ``stopping``.
        """
        from ._loop import stopping_signal

        with self._connect() as conn:
            counts = dict(conn.execute(
                "SELECT r.name, COUNT(c.image_id) FROM raters r LEFT JOIN ("
                "SELECT image_id, rater_id FROM labels WHERE id IN (SELECT MAX(id) FROM labels "
                "GROUP BY image_id, rater_id) AND label IS NOT NULL) c ON c.rater_id = r.id "
                "GROUP BY r.id ORDER BY r.id").fetchall())
            kappa = self.kappa(conn)
            n_queued = self._queued_count(conn)
        rounds = self.rounds()
        return {
            "project": self.name,
            "classes": self.classes,
            "raters": [{"name": n, "n_labels": c} for n, c in counts.items()],
            "kappa": kappa,
            "rounds": [{k: r[k] for k in ("round", "strategy", "n_queried", "fit_time",
                                          "query_time", "n_labeled", "class_counts")}
                       for r in rounds],
            "training": self.training.as_dict(),
            "stopping": stopping_signal(self, rounds, n_queued),
        }

    # -- export ---------------------------------------------------------------
    def export(self, path):
        """Write the consensus labels as a CSV that :func:`load_image_folder` reads.

        Columns: ``filename`` (relative to the project's image folder),
        ``label`` (the consensus), one ``rater_<name>`` column per rater
        (empty where that rater did not label the image), ``patient`` when
        the project has patients, ``n_labels``, ``first_labeled_at`` and
        ``last_labeled_at``. Only images with a consensus label are written,
        in queue order. Read it back with
        ``load_image_folder(path, image_dir)`` or ``skal-cxr simulate --csv
        PATH --image-dir IMAGE_DIR``.

        Parameters
        ----------
        path : path-like
            The CSV file to write (replaced atomically).

        Returns
        -------
        n_rows : int
        """
        with self._connect() as conn:
            ids, codes = self.labeled_set(conn)
            raters = dict(conn.execute("SELECT id, name FROM raters ORDER BY id").fetchall())
            standing = {}
            for image_id, rater_id, label in self._current_labels(conn):
                standing.setdefault(image_id, {})[rater_id] = label
            times = {r[0]: (r[1], r[2]) for r in conn.execute(
                "SELECT image_id, MIN(created_at), MAX(created_at) FROM labels "
                "WHERE label IS NOT NULL GROUP BY image_id")}
            images = {r[0]: (r[1], r[2]) for r in conn.execute(
                "SELECT id, relpath, patient FROM images")}
        has_patient = any(p is not None for _, p in images.values())
        header = ["filename", "label"] + [f"rater_{n}" for n in raters.values()]
        header += (["patient"] if has_patient else []) + [
            "n_labels", "first_labeled_at", "last_labeled_at"]
        tmp = Path(str(path) + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for image_id, code in zip(ids.tolist(), codes.tolist()):
                relpath, patient = images[image_id]
                votes = standing.get(image_id, {})
                row = [relpath, self.classes[code]] + [votes.get(r, "") for r in raters]
                row += ([patient or ""] if has_patient else []) + [
                    len(votes), *times.get(image_id, ("", ""))]
                writer.writerow(row)
        os.replace(tmp, path)
        return len(ids)

    # -- training -------------------------------------------------------------
    def pool_array(self):
        """Every image at the training resolution, in pool order, read lazily.

        Returns
        -------
        pool : ImageRows of shape (n_images, 1, H, W), dtype uint8
            A :class:`~skal_cxr.datasets.ImageRows` view of the project's
            on-disk image cache: indexing it reads only the rows asked for.
        """
        from ._loop import load_pool

        with self._lock:
            if self._pool is None:
                self._pool = load_pool(self)
            return self._pool

    def train_round(self):
        """Run the pending training and query now, in this thread.

        Returns
        -------
        round : int or None
            The round created, or None when no batch was complete.
        """
        from ._loop import train_next_round

        return train_next_round(self)

    def prediction(self, image_id):
        """``{"class", "probabilities"}`` of the latest model for an image, or None.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        prediction : dict or None
            ``None`` before the first model.
        """
        from ._loop import predict_image

        return predict_image(self, _parse_image_id(image_id))


class _Closing:
    """A connection whose reads form one snapshot, closed on exit.

    Entering begins a deferred transaction, so that the several SELECTs of
    one read (status, progress) see the database as of their first SELECT,
    not the writes of concurrent requests in between; :func:`transaction`
    ends it before it begins its own.
    """

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc):
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK" if exc[0] is not None else "COMMIT")
        finally:
            self.conn.close()
        return False


def _parse_image_id(image_id):
    text = str(image_id)
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


def _check_label_id(label_id):
    if isinstance(label_id, bool) or not isinstance(label_id, (int, np.integer)):
        raise NotFound("no such label.")
    return int(label_id)
