"""MCDropoutCNN on pools larger than memory: memory maps, augmentation, precision, Dask."""

import tracemalloc

import numpy as np
import pytest
import torch

from skal_cxr import ActiveLearner
from skal_cxr.datasets import ImageRows
from skal_cxr.strategies import bald
from skal_cxr.strategies._base import QueryContext


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """600 uint8 images of 32x32 on disk; the label is whether the left half is brighter."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    X = rng.integers(0, 150, (600, 32, 32), dtype=np.uint8)
    X[y == 1, :, :16] += 100
    path = tmp_path_factory.mktemp("pool") / "images.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    return np.memmap(path, dtype=np.uint8, mode="r", shape=X.shape), X, y


@pytest.fixture(scope="module")
def fitted(tiny_net, pool):
    mm, X, y = pool
    return tiny_net().fit(X[:64], y[:64])


def test_scoring_a_memmap_reads_batches_without_a_full_copy(pool, fitted):
    mm, X, _ = pool
    float_copy = X.size * 4
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        (entropy,) = fitted.reduce_proba_samples(
            mm, [lambda s: s.mean(0)], n_mc_samples=5, chunk_size=128
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < float_copy / 4, f"peak {peak} bytes: the pool was copied"
    in_ram = fitted.predict_proba_samples(X.astype(np.float32) / 255, n_mc_samples=5)
    np.testing.assert_array_equal(entropy, in_ram.mean(0))
    np.testing.assert_array_equal(fitted.predict_proba(mm), fitted.predict_proba(X))


def test_fit_on_a_memmap_equals_fit_in_memory(tiny_net, pool):
    mm, X, y = pool
    a = tiny_net().fit(ImageRows(mm, np.arange(40)), y[:40])
    b = tiny_net().fit(X[:40].astype(np.float32) / 255, y[:40])
    np.testing.assert_allclose(a.predict_proba(X[:20]), b.predict_proba(X[:20]), atol=1e-6)


def test_active_learner_queries_a_memmap_pool_like_an_array(tiny_net, pool, monkeypatch):
    mm, X, y = pool
    monkeypatch.setattr(QueryContext, "chunk_size", 100)  # the chunked path
    results = []
    for images in (ImageRows(mm), X):
        learner = ActiveLearner(
            tiny_net(), query_strategy=bald, X_training=X[:30], y_training=y[:30], random_state=0
        )
        idx, X_query = learner.query(
            images.subset(np.arange(30, 600)) if isinstance(images, ImageRows) else images[30:],
            n_instances=5,
            n_mc_samples=4,
        )
        np.testing.assert_array_equal(np.asarray(X_query).reshape(5, 32, 32), X[30:][idx])
        results.append(idx)
    np.testing.assert_array_equal(*results)


class Recorder:
    """An augmentation that counts its calls and flips images upside down."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x.flip(-2)


def test_augmentation_runs_in_training_only(tiny_net, pool):
    _, X, y = pool
    recorder = Recorder()
    net = tiny_net(augment=recorder).fit(X[:40], y[:40])
    n_epochs = len(net.history)
    assert recorder.calls == 40 * n_epochs
    recorder.calls = 0
    net.predict_proba_samples(X[:50], n_mc_samples=3)
    net.predict_proba(X[:50])
    net.embed(X[:10])
    assert recorder.calls == 0
    plain = tiny_net().fit(X[:40], y[:40])
    assert not np.allclose(plain.predict_proba(X[:20]), net.predict_proba(X[:20]))


def test_cxr_augmentation_preset_and_bad_values(tiny_net, pool):
    _, X, y = pool
    a = tiny_net(augment="cxr").fit(X[:40], y[:40]).predict_proba(X[:10])
    b = tiny_net(augment="cxr").fit(X[:40], y[:40]).predict_proba(X[:10])
    np.testing.assert_array_equal(a, b)  # seeded
    for bad in ("hflip", 3):
        with pytest.raises(ValueError, match="'augment' parameter"):
            tiny_net(augment=bad).fit(X[:40], y[:40])


def test_bfloat16_trunk_agrees_with_float32(tiny_net, pool, fitted):
    _, X, _ = pool
    fitted.set_params(precision="bfloat16")
    try:
        low = fitted.predict_proba_samples(X[:200], n_mc_samples=8)
        emb_low = fitted.embed(X[:20])
    finally:
        fitted.set_params(precision="float32")
    full = fitted.predict_proba_samples(X[:200], n_mc_samples=8)
    assert np.abs(low - full).max() < 0.05
    assert np.corrcoef(low.mean(0)[:, 1], full.mean(0)[:, 1])[0, 1] > 0.99
    np.testing.assert_allclose(emb_low, fitted.embed(X[:20]), atol=0.1, rtol=0.05)
    with pytest.raises(ValueError, match="'precision' parameter"):
        tiny_net(precision="float16").fit(X[:40], np.tile([0, 1], 20))


def test_chunks_score_like_the_whole_pool(pool, fitted):
    """Per-batch seeds: any batch-aligned chunk gives the samples of the whole pass."""
    _, X, _ = pool
    whole = fitted.predict_proba_samples(X[:256], n_mc_samples=4)
    first = 64 // fitted.batch_size  # X[64:128] starts at this prediction batch
    part = torch.cat(list(fitted._iter_proba_samples(X[64:128], 4, first_batch=first)), dim=1)
    np.testing.assert_array_equal(part.numpy(), whole[:, 64:128])


@pytest.mark.slow
def test_dask_scoring_equals_local_scoring(pool, fitted):
    distributed = pytest.importorskip("distributed")
    mm, X, y = pool
    funcs = [lambda s: s.mean(0), lambda s: s.std(0)[:, 0]]
    local = fitted.reduce_proba_samples(mm, funcs, n_mc_samples=4, chunk_size=100)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        fitted.set_params(scheduler=cluster.scheduler_address)
        try:
            remote = fitted.reduce_proba_samples(mm, funcs, n_mc_samples=4, chunk_size=100)
            learner = ActiveLearner(
                fitted, query_strategy=bald, X_training=X[:64], y_training=y[:64]
            )
            learner.estimator_ = fitted
            QueryContext.chunk_size, old = 100, QueryContext.chunk_size
            try:
                idx_remote, _ = learner.query(ImageRows(mm), n_instances=5, random_state=0)
                fitted.set_params(scheduler=None)
                idx_local, _ = learner.query(ImageRows(mm), n_instances=5, random_state=0)
            finally:
                QueryContext.chunk_size = old
        finally:
            fitted.set_params(scheduler=None)
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(idx_remote, idx_local)
