"""A labeling project: a folder with one SQLite database, checkpoints and previews.

:class:`LabelingProject` is the whole labeling loop as a Python object; the
web app and the ``skal-cxr label`` commands are thin layers over it. It is
a facade over small collaborators, each owning one seam: ``db``
(connections), ``rater_store``, ``image_store``, ``queue`` (rounds, queue,
leases), ``label_store``, ``model_store`` (checkpoints), ``training`` (the
worker's state), ``review`` (adjudication) and ``access`` (which images a
rater may read). Its methods are grouped in mixins: the images
(``_project_images``), corrections and adjudication (``_project_review``),
what a server does (``_project_serving``) and the read side (labels,
agreement, status, exports: ``read/_views.py`` over the pure functions of
``read/_status.py`` and ``read/_export.py``); the loop (``worker/_rounds.py``)
works through the collaborators.
"""

import json
import sqlite3
import threading
import warnings
from pathlib import Path

from ..exceptions import LabelingError, StorageWarning
from ._project_images import ProjectImages
from ._project_review import ProjectReview
from ._project_serving import ProjectServing
from ._scoring import scheme_of
from ._settings import read_settings, round_config
from .read._views import ProjectViews
from .store._access import Access
from .store._checkpoints import ModelStore
from .store._db import DB_FILE, SCHEMA_VERSION, Database, migrate, transaction
from .store._image_store import ImageStore, parse_image_id
from .store._labels import Labels
from .store._leases import release
from .store._pool import load_pool
from .store._queue import Queue
from .store._raters import Raters
from .store._review import Adjudications
from .store._storage import (
    DamagedDatabase,
    check_database,
    damaged_message,
    lost_wal_message,
    lost_wal_pages,
    read_meta,
    storage_error,
)
from .worker._rounds import train_next_round
from .worker._scheduler import TrainingState

__all__ = ["LabelingProject"]


def _first_batch_queued(db):
    """Whether round 0 exists: :func:`init_project` queues it last."""
    try:
        with db.connect() as conn:
            return conn.execute("SELECT 1 FROM rounds WHERE round = 0").fetchone() is not None
    except sqlite3.Error as exc:
        raise (
            storage_error(exc, db.file) or DamagedDatabase(damaged_message(db.file, str(exc)))
        ) from None


class LabelingProject(ProjectViews, ProjectImages, ProjectReview, ProjectServing):
    """A labeling project folder: images, raters, labels, rounds and models.

    Open one with :func:`open_project` (or this class) and create one with
    :func:`init_project`. Methods that act for a rater take the rater's name;
    the web app maps tokens to names. Every method opens its own database
    connection, so one object may be shared by threads, and several
    processes may open the same project.

    Its public methods are the operations of the labeling loop, and they are
    all a caller uses: the web app's routes, the commands, PACS import,
    Label Studio, the benchmarks call ``project.adjudicate(...)``, never
    ``project.review.decide(...)``. A method that hands one call on to a
    collaborator is such an operation, named in the loop's words. The
    collaborators are the project's internals: only the modules the project
    is made of (its mixins, ``store/``, ``read/``, ``worker/``) use them, and
    ``tests/test_architecture.py`` holds every other module to that. What a
    caller needs and no method gives becomes a method here.

    Parameters
    ----------
    path : path-like
        The project folder.

    Attributes
    ----------
    path : Path
    config : dict
        The settings given to :func:`init_project` (those of projects made
        by earlier versions are read in the current form: ``query_size``
        for ``batch_size``, ``engine`` for ``simulation``).
    round_config : RoundConfig
        The round engine's settings (:class:`skal_cxr.engine.RoundConfig`).
    classes : list of str
    score_scheduler : str or None
        Address of a Dask scheduler on which training rounds score the pool
        (:class:`~skal_cxr.MCDropoutCNN` ``scheduler=``; ``skal-cxr label
        serve --score-scheduler``). A setting of this process, not of the
        project; ``None`` (the default) scores here.
    name : str
        The project's name.
    stop_set : list of int
        The ids of the images whose predictions the stopping signal compares.
    scoring : ScoringScheme or None
        The zone scoring scheme (:mod:`skal_cxr.labeling._scoring`), or None.
    db, rater_store, image_store, queue, label_store, model_store, training, review, access
        The collaborators (see the module's docstring): internal, used only
        by the modules the project is made of.
    """

    def __init__(self, path):
        self.path = Path(path)
        db = self.path / DB_FILE
        if not db.is_file():
            raise LabelingError(f"{self.path} is not a labeling project (no {DB_FILE}).")
        pages = lost_wal_pages(db)  # read before any connection rebuilds the index
        if pages:
            warnings.warn(lost_wal_message(db, pages), StorageWarning, stacklevel=2)
        check_database(db)  # a damaged file is refused here, in one line naming it
        self.db = Database(self.path)
        meta = read_meta(self.db)
        version = int(meta.get("schema_version", 0))
        if version < SCHEMA_VERSION:  # an older project: add the new tables
            with self.db.connect() as conn:
                if migrate(conn, version):
                    version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise LabelingError(
                f"{db} has schema version {version}; this skal_cxr reads version {SCHEMA_VERSION}."
            )
        if not _first_batch_queued(self.db):
            raise LabelingError(
                f"{db}: the project's init was interrupted before its first batch was queued; "
                "rerun the same skal-cxr label init to finish it."
            )
        try:
            self.config = read_settings(json.loads(meta["config"]))
            self.round_config = round_config(self.config)
            self.stop_set = [int(i) for i in json.loads(meta["stop_set"])]
            self.classes = [str(c) for c in self.config["classes"]]
            self.name = str(self.config["name"])
            for key in ("image_dir", "labels_per_image", "consensus", "budget"):
                self.config[key]  # noqa: B018 (read by the collaborators)
        except LabelingError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise DamagedDatabase(
                damaged_message(db, f"its settings are unreadable, {what}")
            ) from None
        self._lock = threading.Lock()
        self._pool = None
        self.score_scheduler = None
        self.rater_store = Raters(self.db)
        self.image_store = ImageStore(self.db, self.path, self.config["image_dir"])
        self.queue = Queue(self.config["labels_per_image"], self.config.get("lease_seconds"))
        self.scoring = scheme_of(self.config)  # zone scores, or None
        self.label_store = Labels(
            self.db, self.rater_store, self.image_store, self.queue, self.classes, self.scoring
        )
        self.model_store = ModelStore(self.path)
        self.review = Adjudications(
            self.db,
            self.rater_store,
            self.image_store,
            self.queue,
            self.classes,
            self.config["consensus"] == "adjudicate",
            self.config.get("adjudicate_spread", 1),
        )
        self.access = Access(self.db, self.rater_store, self.image_store, self.review)
        self.training = TrainingState()

    def __repr__(self):
        return f"LabelingProject({str(self.path)!r})"

    def add_rater(self, name, role="rater"):
        """Add a rater; returns the rater's secret token (shown only now).

        Only the token's SHA-256 is stored. The link is ``http://HOST:PORT/#token=TOKEN``.

        Parameters
        ----------
        name : str
            1 to 100 characters, without commas, tabs or newlines; unique.
        role : {"rater", "adjudicator"}, default="rater"
            An adjudicator labels like any rater, and also decides the images
            whose raters disagree (``consensus="adjudicate"``).

        Returns
        -------
        token : str
            The rater's secret token.
        """
        return self.rater_store.add(name, role)

    def raters(self):
        """Names of the raters, in the order they were added.

        Returns
        -------
        names : list of str
            The raters' names.
        """
        return self.rater_store.names()

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
        return self.rater_store.for_token(token)

    def rater_role(self, rater):
        """A rater's role.

        Parameters
        ----------
        rater : str
            The rater's name.

        Returns
        -------
        role : {"rater", "adjudicator"}
            As given to :meth:`add_rater`.
        """
        with self.db.connect() as conn:
            return self.rater_store.role_of(conn, self.rater_store.id_of(conn, rater))

    def budget(self):
        """Images to label in all: the ``budget`` setting, or the whole pool.

        Returns
        -------
        budget : int
        """
        budget = self.config["budget"]
        return budget if budget is not None else self.n_images()

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
        budget = self.budget()
        with self.db.connect() as conn, transaction(conn):
            rid = self.rater_store.id_of(conn, rater)
            return self.queue.next_for(conn, rid, budget)

    def hold_ahead(self, rater, n, current):
        """Up to ``n`` images a rater gets after ``current``, held for them now (prefetching).

        Images already held open beyond ``current``, then batch images nobody
        holds (as long as as many stay free for the other raters), then,
        past the end of the rater's share of the batch, reserve images.

        Parameters
        ----------
        rater : str
            The rater's name.
        n : int
            How many images at most.
        current : str
            The image the rater is shown now (from :meth:`next_image`).

        Returns
        -------
        image_ids : list of str
            The images held, in the order the rater gets them.
        """
        with self.db.connect() as conn, transaction(conn):
            rid = self.rater_store.id_of(conn, rater)
            ahead = self.queue.ahead_for(conn, rid, n)
            return ahead + self.queue.reserve_ahead(
                conn, rid, n - len(ahead), current, self.budget()
            )

    def release(self, rater, image_ids=None):
        """Give back the images a rater holds open (his page closed); committed on return.

        Parameters
        ----------
        rater : str
            The rater's name.
        image_ids : list of str or None, default=None
            The images to give back; ``None``: all he holds open.

        Returns
        -------
        released : list of str
            The images given back, in id order.
        """
        return release(self, rater, image_ids)

    def submit_label(self, rater, image_id, label, seconds=None, note=None, scores=None):
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
        scores : list of int or None, default=None
            With a scoring scheme, the zone scores (``label`` is then their
            binned total's class, and may be None); see
            :mod:`skal_cxr.labeling._scoring`.

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
        out = self.label_store.submit(rater, image_id, label, seconds, note, scores)
        self.training.notify(self)  # a batch may be complete now
        return out

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
        out = self.label_store.skip(rater, image_id)
        self.training.notify(self)  # a batch may be complete now
        return out

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
        return self.label_store.undo(rater, label_id)

    def pool_array(self):
        """Every image at the training resolution, in pool order, read lazily.

        Returns
        -------
        pool : ImageRows of shape (n_images, 1, H, W), dtype uint8
            A :class:`~skal_cxr.datasets.ImageRows` view of the project's
            on-disk image cache: indexing it reads only the rows asked for.
        """
        with self._lock:
            if self._pool is None or len(self._pool) != self.n_images():  # images pulled
                self._pool = load_pool(
                    self.path,
                    self.config["image_size"],
                    self.config["image_dir"],
                    self.image_table(),
                )
            return self._pool

    def train_round(self):
        """Run the pending training and query now, in this thread.

        Returns
        -------
        round : int or None
            The round created, or None when no batch was complete.
        """
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
        from .worker._rounds import predict_image  # torch, imported when first asked

        return predict_image(self, parse_image_id(image_id))
