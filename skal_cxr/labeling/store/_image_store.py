"""The images of a project: registered rows, files inside the image folder, previews.

Every cached derivative of a film (the 8-bit preview, the 16-bit PNGs of
each size) is named by the SHA-256 of the film's bytes *now*, checked as the
training image cache checks it (:mod:`skal_cxr.datasets._cache`): the hash is
recorded with the file's size, modification time, inode and status-change
time in ``previews/<id>.json``, and computed again whenever one of them
differs. A film replaced on disk (``os.replace``, an edit with its time
stamp restored) therefore gets new derivatives at the next request; it is
never served from the previews of its old content.

Previews at display size are also rendered ahead of time
(:meth:`ImageStore.warm`): when the page is told which films come next, one
background thread renders their display-size PNGs, so that the page's
request for them is answered from ``previews/``. They are named by content
identity like any other derivative, and a request for a film whose preview
is being rendered waits for it rather than rendering it a second time.
"""

import io
import json
import os
import threading
import zlib
from pathlib import Path

from PIL import Image

from ..._atomic import atomic_write
from ...datasets._cache import _same_status, _status, file_sha256
from ...exceptions import LabelingError, NotFound
from .._settings import PREVIEW_DIR
from ._db import transaction
from ._image_files import display_pixels, header_values, pixels_png16, window_png

__all__ = ["ImageStore", "FileGone", "parse_image_id"]

#: Longest side of the previews rendered ahead before any page has asked for one
#: (what a 1920x1080 screen asks for, see ``displaySize`` in ``static/rater.js``).
DEFAULT_DISPLAY_SIZE = 2048
_N_LOCKS = 64


class FileGone(LabelingError):
    """The file of a registered image is gone (deleted or moved): **410**."""

    status = 410


def parse_image_id(image_id):
    """The int id of ``image_id`` (str or int), or ``None`` when it is not one."""
    text = str(image_id)
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


class ImageStore:
    """The images table of a project and the files it names.

    Parameters
    ----------
    db : Database
        The project's database.
    project_dir : path-like
        The project folder (previews are cached in its ``previews/``).
    image_dir : path-like
        The folder the images are registered relative to.
    """

    def __init__(self, db, project_dir, image_dir):
        self.db = db
        self.preview_dir = Path(project_dir) / PREVIEW_DIR
        self.image_dir = Path(image_dir)
        self.display_sizes = []  # the display sizes pages asked for, newest last
        self._locks = [threading.Lock() for _ in range(_N_LOCKS)]
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)
        self._jobs = {}  # (image_id, max_size) -> priority of a preview to render ahead
        self._calls = 0
        self._warmer = None  # the thread rendering them, while there are any
        self._relpaths = {}  # image id -> registered path, as read once

    def row(self, conn, image_id):
        """The images row of ``image_id``; :class:`NotFound` if there is none."""
        key = parse_image_id(image_id)
        row = (
            None
            if key is None
            else conn.execute("SELECT * FROM images WHERE id = ?", (key,)).fetchone()
        )
        if row is None:
            raise NotFound("no such image.")
        return row

    def path(self, image_id):
        """The file of an image, checked to be inside the image folder.

        An image's registered path never changes: it is read from the
        database once (the thread rendering previews ahead needs no
        connection of its own); the check runs at each call.
        """
        key = parse_image_id(image_id)
        relpath = self._relpaths.get(key)
        if relpath is None:
            with self.db.connect() as conn:
                relpath = self.row(conn, image_id)["relpath"]
            self._relpaths[key] = relpath
        root = self.image_dir
        path = root / relpath
        real = os.path.realpath(path)
        if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
            raise NotFound("no such image.")
        return path

    def pixels(self, image_id, presets=False):
        """``(pixels uint16 (H, W), window_center, window_width[, windows])`` of an image.

        A file that is gone, or can no longer be shown (changed since it was
        registered into something the decoder refuses), is :class:`NotFound`.
        """
        path = self.path(image_id)
        try:
            return display_pixels(path, presets)
        except ImportError:
            raise
        except Exception as exc:  # decoders fail in many ways
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise NotFound(
                f"the file of image {image_id} cannot be shown: {' '.join(str(reason).split())}"
            ) from None

    def png(self, image_id):
        """8-bit PNG bytes of an image in its default window (cached in ``previews/``)."""
        key, status = self.content_key(image_id)
        cached = self.preview_dir / f"{key}.png"
        if cached.is_file():
            return cached.read_bytes()
        data = window_png(*self.pixels(image_id))
        self._keep(image_id, status, cached, data)
        return data

    def content_key(self, image_id):
        """``(key, status)``: the name of the film's derivatives now, and the file status.

        ``key`` is ``"<id>-<first 16 hex digits of the SHA-256 of its bytes>"``;
        the hash is recorded with the file status in ``previews/<id>.json``
        and computed again when the size, modification time, inode or
        status-change time differ from the recorded ones.

        Raises
        ------
        NotFound
            No such image, or its file is gone.
        """
        path = self.path(image_id)
        image = int(parse_image_id(image_id))
        try:
            st = os.stat(path)
        except OSError:
            raise NotFound(f"the file of image {image_id} cannot be shown: it is gone.") from None
        record = self.preview_dir / f"{image}.json"
        try:
            entry = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entry = None
        if not isinstance(entry, dict) or not _same_status(entry, st) or "sha256" not in entry:
            try:
                sha = file_sha256(path)
            except OSError:
                raise NotFound(
                    f"the file of image {image_id} cannot be shown: it is gone."
                ) from None
            entry = {**_status(st), "sha256": sha}
            key = f"{image}-{sha[:16]}"
            try:  # remembered for the next request; a read-only folder hashes each time
                self.preview_dir.mkdir(exist_ok=True)
                atomic_write(record, json.dumps(entry))
                for old in self.preview_dir.glob(f"{image}-*"):  # of an old content
                    if not old.name.startswith((f"{key}.", f"{key}-")):
                        old.unlink(missing_ok=True)
            except OSError:
                pass
        return f"{image}-{entry['sha256'][:16]}", _status(st)

    def _keep(self, image_id, status, cached, data):
        """Write a derivative to ``cached`` unless the file changed while it was made."""
        try:
            unchanged = _status(os.stat(self.path(image_id))) == status
        except OSError:
            unchanged = False
        if unchanged:
            self.preview_dir.mkdir(exist_ok=True)
            atomic_write(cached, data)

    def require_file(self, image_id):
        """:class:`FileGone` unless the file of ``image_id`` is there (:class:`NotFound`
        for an unknown image)."""
        if not self.path(image_id).is_file():
            raise FileGone(f"the file of image {image_id} is gone; it cannot be labeled.")

    def pixels_png(self, image_id, max_size=None):
        """The 16-bit PNG of an image's display pixels, at most ``max_size`` on a side.

        Cached in ``previews/`` with its geometry and default window in a
        ``tEXt`` chunk, so that a cached film is sent without being decoded.

        Returns
        -------
        png : bytes
            See :func:`~._images.pixels_png16`.
        info : dict
            ``width``, ``height`` (of the PNG), ``full_width``,
            ``full_height`` (of the stored image), ``center`` and
            ``window`` (the default window), ``presets`` (every window of
            the file, see :func:`~._images.display_pixels`).
        """
        if max_size is not None:
            self._note_size(max_size)
        return self._render(image_id, max_size)

    def _render(self, image_id, max_size, load=True):
        """:meth:`pixels_png` of the film's content now, rendered once: a second
        caller of the same preview waits for the first. With ``load=False``
        nothing is read back from a preview already in ``previews/``."""
        key, status = self.content_key(image_id)
        cached = self.preview_dir / f"{key}-{max_size or 'full'}.png16"
        with self._locks[zlib.crc32(cached.name.encode()) % _N_LOCKS]:
            if cached.is_file():
                if not load:
                    return None
                data = cached.read_bytes()
                with Image.open(io.BytesIO(data)) as img:
                    return data, json.loads(img.text["skal_cxr"])
            return self._render_now(image_id, max_size, status, cached)

    def _render_now(self, image_id, max_size, status, cached):
        pixels, center, width, windows = self.pixels(image_id, presets=True)
        info = {
            "full_width": pixels.shape[1],
            "full_height": pixels.shape[0],
            "center": center,
            "window": width,
            "presets": windows,
        }
        h, w = pixels.shape
        scale = 1.0 if max_size is None or max(h, w) <= max_size else max_size / max(h, w)
        info["width"], info["height"] = max(1, round(w * scale)), max(1, round(h * scale))
        data, _ = pixels_png16(pixels, max_size, {"skal_cxr": json.dumps(info)})
        self._keep(image_id, status, cached, data)
        return data, info

    def _note_size(self, max_size):
        with self._guard:
            if max_size in self.display_sizes:
                self.display_sizes.remove(max_size)
            self.display_sizes = [*self.display_sizes, max_size][-2:]

    def warm(self, image_ids, max_size=None):
        """Render the display-size previews of ``image_ids`` ahead, in a background thread.

        The films of the latest call come first, in their order (the film
        the page needs next before those it needs later). Films whose preview
        is already in ``previews/`` (for their content now) cost a file
        status each; a film that is gone or cannot be shown is left to the
        request that asks for it (it says why).

        Parameters
        ----------
        image_ids : iterable of str or int
            The films the page will ask for next, the first first.
        max_size : int or None, default=None
            Longest side of the previews; ``None``: the display sizes pages
            asked for lately (:attr:`display_sizes`), else
            :data:`DEFAULT_DISPLAY_SIZE`.

        Returns
        -------
        jobs : list of (str, int)
            The ``(image_id, max_size)`` put in hand by this call.
        """
        image_ids = [str(i) for i in image_ids]
        for image_id in image_ids:  # read here, in the caller's connection
            try:
                self.path(image_id)
            except NotFound:
                pass
        with self._guard:
            sizes = [max_size] if max_size is not None else list(self.display_sizes)
            sizes = sizes or [DEFAULT_DISPLAY_SIZE]
            self._calls += 1
            jobs = [
                (image_id, size)
                for image_id in dict.fromkeys(str(i) for i in image_ids)
                for size in reversed(sizes)  # the newest size first
            ]
            for position, job in enumerate(jobs):
                self._jobs[job] = (-self._calls, position)
            if jobs and self._warmer is None:
                self._warmer = threading.Thread(
                    target=self._warm_all, name="skal-cxr-previews", daemon=True
                )
                self._warmer.start()
        return jobs

    def _warm_all(self):
        while True:
            with self._guard:
                if not self._jobs:
                    self._warmer = None
                    self._idle.notify_all()
                    return
                job = min(self._jobs, key=self._jobs.__getitem__)
                del self._jobs[job]
            self._warm_one(*job)

    def _warm_one(self, image_id, max_size):
        try:
            if self.source_8bit(image_id, read=False) is not None:
                return False  # the page is sent the file itself
            self._render(image_id, max_size, load=False)
        except Exception:  # the request for it says why, to whoever asks
            return False
        return True

    def settle(self):
        """Wait until the previews put in hand by :meth:`warm` are rendered."""
        with self._guard:
            while self._warmer is not None:
                self._idle.wait()

    def source_8bit(self, image_id, read=True):
        """The file itself when the browser can show it as it is: an 8-bit greyscale
        PNG or JPEG (no transform between its stored values and the display
        pixels but their offset, which a window does not see).

        Returns
        -------
        source : (bytes, str, dict) or None
            The file's bytes, its media type and ``width`` / ``height``;
            ``None`` for any other file (DICOM, 16-bit, colour, palette).
            With ``read=False``, ``True`` instead of the tuple (the file is
            not read).
        """
        path = self.path(image_id)
        try:
            with Image.open(path) as img:
                kind, mode, size = img.format, img.mode, img.size
                interlaced = bool(img.info.get("interlace") or img.info.get("progressive"))
        except Exception:  # not an image Pillow opens: the usual path says why
            return None
        media = {"PNG": "image/png", "JPEG": "image/jpeg"}.get(kind)
        if media is None or mode != "L" or (kind == "PNG" and interlaced):
            return None
        if not read:
            return True
        return path.read_bytes(), media, {"width": size[0], "height": size[1]}

    def related(self, image_id):
        """The films of the same patient, this one included, oldest to newest.

        Returns
        -------
        films : list of dict
            ``image_id``, ``date`` (None if unknown; undated films come last)
            and ``current`` (whether it is ``image_id``); just this film when
            its patient is unknown, a placeholder or shared by too many
            images (see :func:`~._access.related_ids`).
        """
        from ._access import related_ids

        with self.db.connect() as conn:
            row = self.row(conn, image_id)
            ids = related_ids(conn, row["id"])
            rows = [conn.execute("SELECT * FROM images WHERE id = ?", (i,)).fetchone() for i in ids]
        rows = sorted(rows, key=lambda r: (r["study_date"] is None, r["study_date"] or "", r["id"]))
        return [
            {"image_id": str(r["id"]), "date": r["study_date"], "current": r["id"] == row["id"]}
            for r in rows
        ]

    def header(self, image_id, tags):
        """The DICOM attributes ``tags`` of an image (see :func:`~._images.header_values`)."""
        return header_values(self.path(image_id), tags)

    def table(self):
        """``[(image_id, relpath, sha256, patient), ...]`` in pool order."""
        with self.db.connect() as conn:
            return [
                (str(r[0]), r[1], r[2], r[3])
                for r in conn.execute("SELECT id, relpath, sha256, patient FROM images ORDER BY id")
            ]

    def files(self, conn):
        """``{image_id: (relpath, patient)}`` of every image."""
        return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, relpath, patient FROM images")}

    def count(self):
        """Number of images in the pool."""
        with self.db.connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def append(self, rows, after):
        """Register ``(relpath, sha256, patient, study_date)`` rows after the ``after``
        images the caller saw; :class:`LabelingError` when the pool has changed since."""
        with self.db.connect() as conn, transaction(conn):
            n = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            if n != after:
                raise LabelingError(
                    f"{self.preview_dir.parent} changed while images were added; "
                    "run the pull again."
                )
            conn.executemany(
                "INSERT INTO images (id, relpath, sha256, patient, study_date) "
                "VALUES (?, ?, ?, ?, ?)",
                [(n + 1 + i, *row) for i, row in enumerate(rows)],
            )
