"""A task's image: from Label Studio's local files, its uploads or any http(s) URL.

Label Studio stores an image's address in the task's data:

- ``/data/local-files/?d=REL/PATH``: a file under Label Studio's local-files
  document root, read from the disk (the backend must be given that root);
- ``/data/upload/...`` (or any path starting with ``/``): fetched from Label
  Studio's URL with the API token;
- ``http://`` / ``https://``: fetched as is (with the token when the URL is
  Label Studio's).

PNG, JPEG and DICOM are read with :func:`skal_cxr.datasets` readers and
resized to the model's size; each image is cached in the backend folder
(``images/<sha1 of the address>.npy``), so that retraining never fetches
again.
"""

import hashlib
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from .._atomic import replacing
from ..datasets._image_io import read_image

__all__ = ["ImageFetcher", "ImageError"]

#: Seconds to wait for one image.
TIMEOUT = 30


class ImageError(ValueError):
    """An image that cannot be found, fetched or read."""


class ImageFetcher:
    """Reads the images of tasks, resized, through a disk cache.

    Parameters
    ----------
    cache_dir : path-like
        Folder of the cached arrays.
    image_size : int
        Images are resized to ``(image_size, image_size)``.
    document_root : str or None, default=None
        Label Studio's local-files document root.
    label_studio_url : str or None, default=None
        Label Studio's URL (for ``/data/upload/`` and other relative paths).
    api_token : str or None, default=None
        Sent as ``Authorization: Token ...`` to Label Studio.
    """

    def __init__(
        self, cache_dir, image_size, document_root=None, label_studio_url=None, api_token=None
    ):
        self.cache_dir = Path(cache_dir)
        self.image_size = image_size
        self.document_root = document_root
        self.label_studio_url = label_studio_url
        self.api_token = api_token

    def _cache_path(self, address):
        key = hashlib.sha1(f"{address}|{self.image_size}".encode()).hexdigest()
        return self.cache_dir / f"{key}.npy"

    def get(self, address):
        """The image at ``address``, float32 in ``[0, 1]``, of shape ``(1, S, S)``.

        Parameters
        ----------
        address : str
            The task's image address (see the module's description).

        Returns
        -------
        image : ndarray of shape (1, image_size, image_size), dtype float32

        Raises
        ------
        ImageError
            When the file is missing, outside the document root, cannot be
            fetched or is not an image.
        """
        cached = self._cache_path(address)
        if cached.exists():
            try:
                return np.load(cached)
            except (OSError, ValueError):
                pass  # damaged: read again
        image = self._read(address)[None].astype(np.float32)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with replacing(cached, suffix=".npy") as tmp:
            np.save(tmp, image)
        return image

    def get_many(self, addresses):
        """The images at ``addresses``, stacked: shape ``(n, 1, S, S)``.

        Parameters
        ----------
        addresses : list of str
            Image addresses.

        Returns
        -------
        images : ndarray of shape (n, 1, image_size, image_size), dtype float32
        """
        size = (len(addresses), 1, self.image_size, self.image_size)
        if not addresses:
            return np.zeros(size, dtype=np.float32)
        return np.stack([self.get(a) for a in addresses])

    def _read(self, address):
        size = (self.image_size, self.image_size)
        parsed = urllib.parse.urlparse(address)
        if parsed.path.endswith("/data/local-files/") or parsed.path == "/data/local-files":
            return self._read_file(self._local_file(parsed), size)
        if parsed.scheme in ("http", "https"):
            return self._read_url(address, size, token=self._is_label_studio(address))
        if address.startswith("/"):
            if not self.label_studio_url:
                raise ImageError(
                    f"{address}: a Label Studio path needs Label Studio's URL "
                    "(label_studio_url or LABEL_STUDIO_URL)."
                )
            url = self.label_studio_url.rstrip("/") + address
            return self._read_url(url, size, token=True)
        return self._read_file(Path(address), size)

    def _local_file(self, parsed):
        relative = urllib.parse.parse_qs(parsed.query).get("d", [""])[0]
        if not self.document_root:
            raise ImageError(
                f"/data/local-files/?d={relative}: the backend needs Label Studio's "
                "document root (document_root or LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)."
            )
        root = Path(self.document_root).resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise ImageError(f"{relative}: outside the document root {root}.")
        return path

    def _is_label_studio(self, url):
        return bool(self.label_studio_url) and url.startswith(self.label_studio_url.rstrip("/"))

    @staticmethod
    def _read_file(path, size):
        if not Path(path).is_file():
            raise ImageError(f"{path}: no such image file.")
        try:
            return read_image(path, size)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{path}: not a readable image ({exc}).") from exc

    def _read_url(self, url, size, token):
        request = urllib.request.Request(url)
        if token and self.api_token:
            request.add_header("Authorization", f"Token {self.api_token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                data = response.read()
        except (OSError, ValueError) as exc:
            raise ImageError(f"{url}: cannot be fetched ({exc}).") from exc
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "image"
            path.write_bytes(data)
            return self._read_file(path, size)
