"""A task's image: local storage, Label Studio's uploads with the token, http(s) URLs."""

import http.server
import threading

import numpy as np
import pytest
from _ls_tasks import write_pngs

from skal_cxr.label_studio._images import ImageError, ImageFetcher


@pytest.fixture
def pngs(tmp_path):
    root = tmp_path / "root"
    names = write_pngs(root / "images", 2, size=32)
    return root, names


@pytest.fixture
def server(pngs):
    """An http server of the PNGs: ``/data/upload/NAME`` needs ``Token secret``."""
    root, _ = pngs
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            name = self.path.rsplit("/", 1)[-1]
            needs_token = self.path.startswith("/data/upload/")
            if needs_token and self.headers.get("Authorization") != "Token secret":
                self.send_response(401)
                self.end_headers()
                return
            path = root / "images" / name
            if not path.exists():
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(path.read_bytes())

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_local_files_are_read_from_the_document_root_and_cached(tmp_path, pngs):
    root, names = pngs
    fetcher = ImageFetcher(tmp_path / "cache", 8, document_root=str(root))
    image = fetcher.get(f"/data/local-files/?d=images/{names[1]}")
    assert image.shape == (1, 8, 8) and image.dtype == np.float32
    assert 0.5 < image.mean() < 0.9  # image 1 is bright
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    (root / "images" / names[1]).unlink()  # read from the cache from now on
    np.testing.assert_array_equal(fetcher.get(f"/data/local-files/?d=images/{names[1]}"), image)


def test_local_files_outside_the_root_or_without_root_are_refused(tmp_path, pngs):
    root, names = pngs
    fetcher = ImageFetcher(tmp_path / "cache", 8, document_root=str(root / "images"))
    with pytest.raises(ImageError, match="outside the document root"):
        fetcher.get("/data/local-files/?d=../../etc/passwd")
    with pytest.raises(ImageError, match="document root"):
        ImageFetcher(tmp_path / "c2", 8).get(f"/data/local-files/?d=images/{names[0]}")


def test_uploads_are_fetched_from_label_studio_with_the_token(tmp_path, pngs, server):
    url, seen = server
    _, names = pngs
    fetcher = ImageFetcher(tmp_path / "cache", 8, label_studio_url=url, api_token="secret")
    assert fetcher.get(f"/data/upload/1/{names[0]}").mean() < 0.5  # image 0 is dark
    assert seen[-1] == (f"/data/upload/1/{names[0]}", "Token secret")
    wrong = ImageFetcher(tmp_path / "c2", 8, label_studio_url=url, api_token="wrong")
    with pytest.raises(ImageError, match="cannot be fetched"):
        wrong.get(f"/data/upload/1/{names[0]}")
    with pytest.raises(ImageError, match="Label Studio's URL"):
        ImageFetcher(tmp_path / "c3", 8).get(f"/data/upload/1/{names[0]}")


def test_other_urls_are_fetched_without_the_token(tmp_path, pngs, server):
    url, seen = server
    _, names = pngs
    fetcher = ImageFetcher(tmp_path / "cache", 8, api_token="secret")
    assert fetcher.get(f"{url}/public/{names[1]}").shape == (1, 8, 8)
    assert seen[-1] == (f"/public/{names[1]}", None)
    with pytest.raises(ImageError, match="cannot be fetched"):
        fetcher.get(f"{url}/public/absent.png")


def test_a_file_that_is_no_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    fetcher = ImageFetcher(tmp_path / "cache", 8, document_root=str(tmp_path))
    with pytest.raises(ImageError, match="not a readable image"):
        fetcher.get("/data/local-files/?d=notes.png")
