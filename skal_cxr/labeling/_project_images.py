"""The images of a labeling project, as its callers read them (a mixin of the project).

A mixin of :class:`~skal_cxr.labeling.LabelingProject`: the pool's table, an
image's file, pixels, previews, related films and DICOM attributes, each read
through the project's ``image_store``, and whether a rater may read an image
(its ``access``). The web app's image routes call these methods.
"""

import json

__all__ = ["ProjectImages"]


class ProjectImages:
    """The pool's images: table, files, pixels, previews, context (a mixin)."""

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
        return self.image_store.path(image_id)

    def image_pixels(self, image_id, presets=False):
        """``(pixels uint16 (H, W), window_center, window_width)`` of an image.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).
        presets : bool, default=False
            Also return the file's windows (the DICOM window presets).

        Returns
        -------
        pixels : ndarray of shape (H, W), dtype uint16
            The image's pixels.
        window_center, window_width : float
            Its default display window.
        windows : list of dict
            With ``presets=True`` only: every window of the file (see
            :func:`~skal_cxr.labeling.store._image_files.display_pixels`).
        """
        return self.image_store.pixels(image_id, presets=presets)

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
        return self.image_store.png(image_id)

    def image_pixels_png(self, image_id, max_size=None):
        """The 16-bit PNG of an image's display pixels (cached in ``previews/``).

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).
        max_size : int or None, default=None
            Its longer side at most, in pixels; ``None``: the full size.

        Returns
        -------
        png : bytes
            The PNG file's content.
        info : dict
            ``width``, ``height`` (of the PNG), ``full_width``,
            ``full_height``, ``center`` and ``window`` (the default window)
            and ``presets`` (every window of the file).
        """
        return self.image_store.pixels_png(image_id, max_size)

    def image_source(self, image_id):
        """The file itself when a browser shows it as it is (8-bit greyscale PNG or JPEG).

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        source : (bytes, str, dict) or None
            The file's bytes, its media type and ``width`` / ``height``;
            ``None`` for any other file (DICOM, 16-bit, colour, palette).
        """
        return self.image_store.source_8bit(image_id)

    def related_images(self, image_id):
        """The films of the same patient, this one included, oldest to newest.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Returns
        -------
        films : list of dict
            ``image_id``, ``date`` (None if unknown) and ``current`` (whether
            it is ``image_id``); just this film when its patient is unknown.
        """
        return self.image_store.related(image_id)

    def image_header(self, image_id, tags):
        """DICOM attributes of an image.

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).
        tags : list of str
            The attributes' keywords (the ``header_tags`` setting).

        Returns
        -------
        values : list of dict
            One entry per tag (see
            :func:`~skal_cxr.labeling.store._image_files.header_values`).
        """
        return self.image_store.header(image_id, tags)

    def require_image_file(self, image_id):
        """Refuse an image whose file is gone (before a label of it is taken).

        Parameters
        ----------
        image_id : str
            The image's id (as in :meth:`image_table`).

        Raises
        ------
        NotFound
            No such image.
        FileGone
            Its file is gone (HTTP 410).
        """
        self.image_store.require_file(image_id)

    def check_access(self, rater, image_id):
        """Refuse a rater an image he may not read (neither assigned nor related).

        Parameters
        ----------
        rater : str
            The rater's name.
        image_id : str
            The image's id (as in :meth:`image_table`).

        Raises
        ------
        NotFound
            No such image.
        Forbidden
            The rater may not read it.
        """
        self.access.check(rater, image_id)

    def warm_previews(self, image_ids, n_batch=4):
        """Render the display-size previews of the films raters get next, in the background.

        Parameters
        ----------
        image_ids : list of str
            The films of one rater's next requests (his next film, those held for him),
            nearest first.
        n_batch : int, default=4
            How many films follow them: the batch's films nobody has labeled yet, in
            queue order, then the reserve films raters get after it, in the order they
            are handed out.
        """
        with self.db.connect() as conn:
            states = self.queue.image_states(conn)
            latest = self.queue.latest_round(conn)
        after = [i for i, s in states.items() if not s["done"] and not s["labels"]][:n_batch]
        if latest is not None and len(after) < n_batch:
            reserve = json.loads(latest["reserve"] or "[]")
            after += [i for i in reserve if i not in states][: n_batch - len(after)]
        self.image_store.warm([*image_ids, *(str(i) for i in after)])

    def image_table(self):
        """``[(image_id, relpath, sha256, patient), ...]`` in pool order.

        Returns
        -------
        table : list of tuple
            One ``(image_id, relpath, sha256, patient)`` per image;
            ``patient`` is ``None`` without a patient column.
        """
        return self.image_store.table()

    def n_images(self):
        """Number of images in the pool.

        Returns
        -------
        n_images : int
            Images registered by :func:`init_project`.
        """
        return self.image_store.count()

    def add_images(self, rows, after):
        """Register images after the pool's (a PACS pull); committed on return.

        Parameters
        ----------
        rows : list of tuple
            ``(relpath, sha256, patient, study_date)`` of each new image.
        after : int
            The number of images the caller saw in the pool.

        Raises
        ------
        LabelingError
            When the pool has changed since (another pull): nothing is added.
        """
        self.image_store.append(rows, after)
