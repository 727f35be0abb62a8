"""Labeling projects read their pool from the on-disk image cache, never all of it at once."""

import shutil

import numpy as np
import pytest
from _labeling_fakes import CLASSES, TINY, truth_of, write_phantoms

from skal_cxr import MCDropoutCNN
from skal_cxr.datasets import ImageRows
from skal_cxr.labeling import LabelingError, init_project, open_project
from skal_cxr.labeling._settings import cache_dir
from skal_cxr.strategies import STRATEGIES


def label_batch(project, truth, rater="a"):
    while (nxt := project.next_image(rater))["image_id"] is not None:
        project.submit_label(rater, nxt["image_id"], truth_of(project, truth, nxt["image_id"]))


@pytest.mark.parametrize("cold_start", ["random", "k_center"])
def test_the_loop_reads_the_pool_lazily_from_the_cache(
    make_project, phantom_folder, monkeypatch, cold_start
):
    seen = {"fit": [], "strategy": [], "reads": []}
    fit, getitem = MCDropoutCNN.fit, ImageRows.__getitem__

    def record_fit(self, X, y=None, **kw):
        seen["fit"].append((type(X), len(X)))
        return fit(self, X, y, **kw)

    def record_read(self, key):
        out = getitem(self, key)
        seen["reads"].append(len(out))
        return out

    def refuse_full_copy(self, dtype=None, copy=None):
        raise AssertionError("the whole pool was read into memory")

    strategy = STRATEGIES["mean_std"]

    def record_strategy(learner, X_pool, *args, **kwargs):
        seen["strategy"].append(X_pool)
        return strategy(learner, X_pool, *args, **kwargs)

    monkeypatch.setattr(MCDropoutCNN, "fit", record_fit)
    monkeypatch.setattr(ImageRows, "__getitem__", record_read)
    monkeypatch.setattr(ImageRows, "__array__", refuse_full_copy)
    monkeypatch.setitem(STRATEGIES, "mean_std", record_strategy)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load of a pool"))

    project = make_project(cold_start=cold_start, reserve_size=2)
    n = project.n_images()
    project.add_rater("a")
    for r in (1, 2):
        label_batch(project, phantom_folder[1])
        assert project.train_round() == r
    assert project.prediction(project.rounds()[-1]["queried"][0]) is not None

    pool = project.pool_array()
    assert isinstance(pool, ImageRows) and isinstance(pool.images, np.memmap)
    assert pool.shape == (n, 1, 16, 16) and pool.dtype == np.uint8
    assert str(cache_dir(project.path, (16, 16))) in str(pool.images.filename)
    # training gathers the labeled rows only
    n_labeled = [x["n_labeled"] for x in project.rounds()[1:]]
    assert seen["fit"] == [(np.ndarray, k) for k in n_labeled]
    # the strategy gets lazy views of the images never queued (batch, then reserve
    # query of each round; the rater labels 5 + 2 reserve images a round), over
    # the same cache file (each round's job opens it anew)
    assert len(seen["strategy"]) == 4
    for X_pool, k in zip(seen["strategy"], [n - 7, n - 12, n - 14, n - 19]):
        assert isinstance(X_pool, ImageRows) and isinstance(X_pool.images, np.memmap)
        assert X_pool.images.filename == pool.images.filename
        assert len(X_pool) == k
    # every read is one batch, the labeled set or the stop set: never the pool
    assert seen["reads"] and max(seen["reads"]) <= 32 < n


def test_a_project_with_the_old_npy_pool_still_opens(tmp_path, phantom_folder):
    """An earlier version kept the whole pool as cache/pool-HxW-KEY.npy: ignored, removed."""
    projects = []
    for name in ("reference", "old"):
        project = init_project(
            tmp_path / name, phantom_folder[0], CLASSES, **{**TINY, "query_size": 5}
        )
        project.add_rater("a")
        label_batch(project, phantom_folder[1])
        projects.append(project)
    old = projects[1]
    shutil.rmtree(cache_dir(old.path, (16, 16)))  # the old version had no image cache
    stale = old.path / "cache" / "pool-16x16-0123456789abcdef.npy"
    np.save(stale, np.zeros((old.n_images(), 1, 16, 16), np.float32))  # wrong pixels
    labels = old.labels()

    reopened = open_project(old.path)
    assert projects[0].train_round() == reopened.train_round() == 1
    assert projects[0].rounds()[1]["queried"] == reopened.rounds()[1]["queried"]
    assert reopened.labels() == labels
    assert not stale.exists() and cache_dir(old.path, (16, 16)).is_dir()


def test_init_builds_the_cache_and_resumes_after_an_interruption(tmp_path):
    image_dir = tmp_path / "images"
    labels = write_phantoms(image_dir, n=20)
    truth = {f"im{i:03d}.png": c for i, c in enumerate(labels)}
    (image_dir / "im005.png").write_bytes(b"not a png")
    settings = {**TINY, "query_size": 5, "stop_set_size": 5}
    with pytest.raises(LabelingError, match=r"1 images cannot be read: .*im005\.png"):
        init_project(tmp_path / "p", image_dir, CLASSES, **settings)
    # what an interrupted init leaves: the cache only (19 images decoded, kept)
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["cache"]
    write_phantoms(tmp_path / "fixed", n=20)
    shutil.copy(tmp_path / "fixed" / "im005.png", image_dir / "im005.png")
    project = init_project(tmp_path / "p", image_dir, CLASSES, **settings)
    assert project.n_images() == 20

    # hostile: a folder with the cache and something else is not taken over
    (tmp_path / "q" / "cache").mkdir(parents=True)
    (tmp_path / "q" / "notes.txt").write_text("mine")
    with pytest.raises(LabelingError, match="not empty"):
        init_project(tmp_path / "q", image_dir, CLASSES, **settings)

    # a file changed after init: decoded again, with a warning
    project.add_rater("a")
    label_batch(project, truth)
    before = np.asarray(project.pool_array()[[0]])
    shutil.copy(image_dir / "im001.png", image_dir / "im000.png")
    reopened = open_project(project.path)
    with pytest.warns(UserWarning, match=r"1 images changed .*im000\.png"):
        pool = reopened.pool_array()
    assert not np.array_equal(pool[[0]], before)
    np.testing.assert_array_equal(pool[[0]], pool[[1]])
    assert reopened.train_round() == 1


def test_a_same_size_edit_with_its_time_restored_reaches_the_pool(tmp_path):
    """The project's cache sees content, not time stamps (cp -p, rsync -a, a restore)."""
    import os

    from PIL import Image

    from skal_cxr.labeling.store._pool import build_pool_cache

    files = []
    for i in range(3):
        files.append(tmp_path / f"im{i}.png")
        Image.fromarray(np.full((12, 12), 50 * i, np.uint8)).save(files[-1], compress_level=0)
    (tmp_path / "project").mkdir()
    assert (build_pool_cache(tmp_path / "project", (8, 8), files).images[1] == 50).all()
    st = os.stat(files[1])
    Image.fromarray(np.full((12, 12), 222, np.uint8)).save(files[1], compress_level=0)
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(files[1]).st_size == st.st_size
    assert (build_pool_cache(tmp_path / "project", (8, 8), files).images[1] == 222).all()
