"""The images of a project: registered rows, files inside the image folder, previews."""

import os
import threading
from pathlib import Path

from ..exceptions import NotFound
from ._images import display_pixels, window_png
from ._settings import PREVIEW_DIR

__all__ = ["ImageStore", "parse_image_id"]


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

    def row(self, conn, image_id):
        """The images row of ``image_id``; :class:`NotFound` if there is none."""
        key = parse_image_id(image_id)
        row = None if key is None else conn.execute(
            "SELECT * FROM images WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise NotFound("no such image.")
        return row

    def path(self, image_id):
        """The file of an image, checked to be inside the image folder."""
        with self.db.connect() as conn:
            row = self.row(conn, image_id)
        root = self.image_dir
        path = root / row["relpath"]
        real = os.path.realpath(path)
        if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
            raise NotFound("no such image.")
        return path

    def pixels(self, image_id):
        """``(pixels uint16 (H, W), window_center, window_width)`` of an image."""
        return display_pixels(self.path(image_id))

    def png(self, image_id):
        """8-bit PNG bytes of an image in its default window (cached in ``previews/``)."""
        with self.db.connect() as conn:
            row = self.row(conn, image_id)
        cached = self.preview_dir / f"{row['id']}-{row['sha256'][:16]}.png"
        if cached.is_file():
            return cached.read_bytes()
        data = window_png(*self.pixels(image_id))
        tmp = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
        return data

    def table(self):
        """``[(image_id, relpath, sha256, patient), ...]`` in pool order."""
        with self.db.connect() as conn:
            return [(str(r[0]), r[1], r[2], r[3]) for r in
                    conn.execute("SELECT id, relpath, sha256, patient FROM images ORDER BY id")]

    def files(self, conn):
        """``{image_id: (relpath, patient)}`` of every image."""
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT id, relpath, patient FROM images")}

    def count(self):
        """Number of images in the pool."""
        with self.db.connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
