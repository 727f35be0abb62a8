import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skal_cxr.datasets import ImageCache, _cache, build_image_cache, load_image_folder
from skal_cxr.datasets._image_io import read_image

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_pngs(folder, n, size=(20, 24), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"im{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def decodes(monkeypatch):
    """Files decoded in this process (n_jobs=1 runs the chunks here)."""
    seen = []
    real = _cache._read_pillow

    def counting(path, max_pixels=None):
        seen.append(Path(path).name)
        return real(path, max_pixels=max_pixels)

    monkeypatch.setattr(_cache, "_read_pillow", counting)
    return seen


def test_cache_holds_resized_uint8_images_and_their_index(tmp_path):
    paths = write_pngs(tmp_path / "img", 7)
    cache = build_image_cache(paths, tmp_path / "cache", 8, chunk_size=3)
    assert isinstance(cache.images, np.memmap) and cache.images.dtype == np.uint8
    assert cache.images.shape == (7, 8, 8)
    for path, image, entry in zip(paths, cache.images, cache.index):
        expected = np.rint(read_image(path, (8, 8)) * 255).astype(np.uint8)
        np.testing.assert_array_equal(image, expected)
        assert entry["file"] == str(path.resolve())
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["original_size"] == [20, 24]
        assert entry["window"] is None and entry["error"] is None
    reopened = ImageCache(tmp_path / "cache")
    np.testing.assert_array_equal(reopened.images, cache.images)
    assert reopened.files.tolist() == [str(p.resolve()) for p in paths]


def test_parallel_build_runs_in_threads_and_matches_one_worker(tmp_path, decodes):
    """n_jobs > 1 decodes in threads of this process (no worker start-up) with the same result."""
    paths = write_pngs(tmp_path / "img", 9)
    one = build_image_cache(paths, tmp_path / "one", 8, chunk_size=2)
    decodes.clear()
    two = build_image_cache(paths, tmp_path / "two", 8, n_jobs=2, chunk_size=2)
    assert sorted(decodes) == sorted(p.name for p in paths)  # all decoded here
    np.testing.assert_array_equal(one.images, two.images)
    assert [e["sha256"] for e in one.index] == [e["sha256"] for e in two.index]


def test_unreadable_files_are_listed_not_fatal(tmp_path):
    paths = write_pngs(tmp_path / "img", 2)
    (tmp_path / "img" / "bad.png").write_bytes(b"not an image")
    cache = build_image_cache(
        paths + [tmp_path / "img" / "bad.png", tmp_path / "gone.png"], tmp_path / "cache", 8
    )
    assert set(cache.errors) == {str(tmp_path / "img" / "bad.png"), str(tmp_path / "gone.png")}
    assert "unreadable image" in cache.errors[str(tmp_path / "img" / "bad.png")]
    assert not cache.images[2:].any()


def test_dicom_window_is_recorded(tmp_path, write_dicom):
    write_dicom(tmp_path / "w.dcm", [[0, 50], [75, 150]], WindowCenter=50.5, WindowWidth=101)
    write_dicom(tmp_path / "plain.dcm", [[0, 50], [75, 150]])
    cache = build_image_cache([tmp_path / "w.dcm", tmp_path / "plain.dcm"], tmp_path / "c", 2)
    assert [e["window"] for e in cache.index] == ["50.5/101", "min-max"]
    expected = np.rint(read_image(tmp_path / "w.dcm") * 255).astype(np.uint8)
    np.testing.assert_array_equal(cache.images[0], expected)


def test_rebuild_decodes_only_new_and_changed_files(tmp_path, decodes):
    paths = write_pngs(tmp_path / "img", 6)
    first = build_image_cache(paths[:5], tmp_path / "cache", 8, chunk_size=2)
    assert len(decodes) == 5
    decodes.clear()
    again = build_image_cache(paths[:5], tmp_path / "cache", 8, chunk_size=2)
    assert decodes == [] and again.generation == first.generation

    # paths[1]: new content; paths[2]: touched only (same bytes); paths[5]: new file
    Image.fromarray(np.full((20, 24), 9, np.uint8)).save(paths[1])
    os.utime(paths[2], ns=(time.time_ns(), time.time_ns() + 10**9))
    cache = build_image_cache(paths, tmp_path / "cache", 8, chunk_size=2)
    assert sorted(decodes) == ["im001.png", "im005.png"]
    assert cache.images.shape == (6, 8, 8)
    assert (cache.images[1] == 9).all()
    fresh = build_image_cache(paths, tmp_path / "fresh", 8)
    np.testing.assert_array_equal(cache.images, fresh.images)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "cache.json",
        f"images-{cache.generation}.u8",
        f"index-{cache.generation}.json",
    ]


def test_bad_arguments_raise_before_any_work(tmp_path):
    paths = write_pngs(tmp_path / "img", 2)
    with pytest.raises(ValueError, match="distinct"):
        build_image_cache([paths[0], paths[0]], tmp_path / "c", 8)
    with pytest.raises(ValueError, match="image_size"):
        build_image_cache(paths, tmp_path / "c", None)
    with pytest.raises(ValueError, match="chunk_size"):
        build_image_cache(paths, tmp_path / "c", 8, chunk_size=0)
    build_image_cache(paths, tmp_path / "c", 8)
    with pytest.raises(ValueError, match=r"size \(8, 8\)"):
        build_image_cache(paths, tmp_path / "c", 16)
    with pytest.raises(FileNotFoundError):
        ImageCache(tmp_path / "nothing")


_SLOW_BUILD = """
import sys, time
from skal_cxr.datasets import _cache, build_image_cache
real = _cache._read_pillow
def slow(path, max_pixels=None):
    time.sleep(0.02)
    return real(path, max_pixels=max_pixels)
_cache._read_pillow = slow
build_image_cache(sys.argv[2:], sys.argv[1], 8, chunk_size=4)
"""


def test_build_survives_sigkill_and_resumes(tmp_path, decodes):
    """A real SIGKILL mid-build: committed chunks are kept, the rest is redone."""
    paths = write_pngs(tmp_path / "img", 60)
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BUILD, str(cache_dir), *map(str, paths)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            parts = list(cache_dir.glob("parts-*/chunk-*.json"))
            if len(parts) >= 3:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the build ended before it could be killed"
    committed = len(list(cache_dir.glob("parts-*/chunk-*.json")))
    assert 3 <= committed < 15
    with pytest.raises(FileNotFoundError):
        ImageCache(cache_dir)  # no complete build yet

    cache = build_image_cache(paths, cache_dir, 8, chunk_size=4)
    assert len(decodes) <= 60 - 4 * committed
    fresh = build_image_cache(paths, tmp_path / "fresh", 8)
    np.testing.assert_array_equal(cache.images, fresh.images)
    assert [e["sha256"] for e in cache.index] == [e["sha256"] for e in fresh.index]


def write_folder(tmp_path, n=6):
    paths = write_pngs(tmp_path / "img", n)
    rows = [[p.name, ["normal", "severe"][i % 2]] for i, p in enumerate(paths)]
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "label"], *rows])
    return tmp_path / "labels.csv", tmp_path / "img"


def test_load_image_folder_from_cache(tmp_path):
    csv_path, image_dir = write_folder(tmp_path)
    plain = load_image_folder(csv_path, image_dir, image_size=8)
    cached = load_image_folder(csv_path, image_dir, image_size=8, cache_dir=tmp_path / "c")
    assert isinstance(cached.images, np.memmap) and cached.images.dtype == np.uint8
    assert cached.keys() == plain.keys()
    np.testing.assert_array_equal(cached.target, plain.target)
    np.testing.assert_array_equal(cached.filenames, plain.filenames)
    np.testing.assert_allclose(cached.images / 255.0, plain.images, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="cache_dir needs image_size"):
        load_image_folder(csv_path, image_dir, cache_dir=tmp_path / "c")


def test_load_image_folder_from_cache_skips_bad_rows(tmp_path):
    csv_path, image_dir = write_folder(tmp_path)
    (image_dir / "im002.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match="im002.png"):
        load_image_folder(csv_path, image_dir, image_size=8, cache_dir=tmp_path / "c")
    data = load_image_folder(
        csv_path, image_dir, image_size=8, cache_dir=tmp_path / "c", on_error="skip"
    )
    assert isinstance(data.images, np.memmap) and len(data.images) == 5
    assert [s[1] for s in data.skipped] == ["im002.png"]
    plain = load_image_folder(csv_path, image_dir, image_size=8, on_error="skip")
    np.testing.assert_allclose(data.images / 255.0, plain.images, atol=0.5 / 255 + 1e-6)


def _resident_bytes(path):
    """Bytes of ``path`` resident in this process's mappings of it (Linux smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux /proc")
def test_loading_from_cache_leaves_no_image_pages_resident(tmp_path):
    """The duplicate check reads every cached image; it must not keep them all in RSS."""
    csv_path, image_dir = write_folder(tmp_path, n=64)
    data = load_image_folder(csv_path, image_dir, image_size=128, cache_dir=tmp_path / "c")
    assert data.images.nbytes == 64 * 128 * 128  # 1 MiB, 256 pages
    assert _resident_bytes(data.images.filename) <= 16 * 4096


# -- change detection: the content, not the time stamp --------------------------
def _same_size_edit(path, value):
    """Rewrite a stored (uncompressed) PNG with other pixels, same size, same times."""
    st = os.stat(path)
    Image.fromarray(np.full((20, 24), value, np.uint8)).save(path, compress_level=0)
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p / rsync -a / a restore


def write_stored_pngs(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"im{i:03d}.png")
        Image.fromarray(np.full((20, 24), 10 * i, np.uint8)).save(paths[-1], compress_level=0)
    return paths


def test_a_same_size_edit_with_its_time_restored_is_decoded_again(tmp_path, decodes):
    paths = write_stored_pngs(tmp_path / "img", 3)
    first = build_image_cache(paths, tmp_path / "cache", 8)
    assert (first.images[1] == 10).all()
    decodes.clear()
    _same_size_edit(paths[1], 200)
    again = build_image_cache(paths, tmp_path / "cache", 8)
    assert decodes == ["im001.png"]  # only the edited file
    assert (again.images[1] == 200).all() and (again.images[2] == 20).all()
    assert again.index[1]["sha256"] == hashlib.sha256(paths[1].read_bytes()).hexdigest()


def test_a_replaced_file_with_the_old_status_is_decoded_again(tmp_path, decodes):
    """A file replaced by rename (new inode) with size and mtime of the old one."""
    paths = write_stored_pngs(tmp_path / "img", 2)
    build_image_cache(paths, tmp_path / "cache", 8)
    st = os.stat(paths[0])
    other = tmp_path / "other.png"
    Image.fromarray(np.full((20, 24), 99, np.uint8)).save(other, compress_level=0)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, paths[0])
    decodes.clear()
    again = build_image_cache(paths, tmp_path / "cache", 8)
    assert decodes == ["im000.png"] and (again.images[0] == 99).all()


def test_touched_files_are_hashed_not_decoded_and_the_index_refreshed(tmp_path, decodes):
    paths = write_stored_pngs(tmp_path / "img", 2)
    first = build_image_cache(paths, tmp_path / "cache", 8)
    os.utime(paths[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    decodes.clear()
    again = build_image_cache(paths, tmp_path / "cache", 8)
    assert decodes == [] and again.generation == first.generation
    assert ImageCache(tmp_path / "cache").index[0]["mtime_ns"] == os.stat(paths[0]).st_mtime_ns


def test_verify_hashes_every_file(tmp_path, decodes, monkeypatch):
    """A change no file status shows (here: a wrong recorded hash) is found by verify only."""
    paths = write_stored_pngs(tmp_path / "img", 2)
    cache = build_image_cache(paths, tmp_path / "cache", 8)
    index_path = tmp_path / "cache" / f"index-{cache.generation}.json"
    index = json.loads(index_path.read_text())
    index[1]["sha256"] = "0" * 64
    index_path.write_text(json.dumps(index))
    decodes.clear()
    build_image_cache(paths, tmp_path / "cache", 8)
    assert decodes == []  # status unchanged: trusted
    build_image_cache(paths, tmp_path / "cache", 8, verify=True)
    assert decodes == ["im001.png"]


def test_load_image_folder_sees_a_same_size_edit_through_its_cache(tmp_path):
    paths = write_stored_pngs(tmp_path / "img", 4)
    (tmp_path / "labels.csv").write_text(
        "filename,label\n" + "".join(f"{p.name},{i % 2}\n" for i, p in enumerate(paths))
    )

    def load():
        return load_image_folder(
            tmp_path / "labels.csv", tmp_path / "img", image_size=8, cache_dir=tmp_path / "cache"
        )

    assert (load().images[2] == 20).all()
    _same_size_edit(paths[2], 77)
    assert (load().images[2] == 77).all()
