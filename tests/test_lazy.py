import pickle

import numpy as np
import pytest
import torch

from skal_cxr._lazy import ImageRows
from skal_cxr._lazy_dataset import LazyImageDataset


@pytest.fixture
def memmap(tmp_path):
    data = np.arange(10 * 3 * 4, dtype=np.uint8).reshape(10, 3, 4)
    mm = np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="w+", shape=data.shape)
    mm[:] = data
    mm.flush()
    return np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="r", shape=data.shape), data


def test_rows_read_what_is_asked_in_order(memmap):
    mm, data = memmap
    rows = ImageRows(mm, [7, 2, 5, 2])
    assert rows.shape == (4, 1, 3, 4) and len(rows) == 4 and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows[[3, 0]], data[[2, 7]][:, None])
    np.testing.assert_array_equal(rows[1:3], data[[2, 5]][:, None])
    np.testing.assert_array_equal(rows[-1], data[2][None])
    np.testing.assert_array_equal(np.asarray(rows), data[[7, 2, 5, 2]][:, None])
    sub = rows.subset([2, 0])
    np.testing.assert_array_equal(sub[:], data[[5, 7]][:, None])


def test_bad_views_raise(memmap):
    mm, _ = memmap
    with pytest.raises(IndexError):
        ImageRows(mm, [10])
    with pytest.raises(ValueError, match="single-channel"):
        ImageRows(np.zeros((2, 3, 4, 4)))


def test_pickled_memmap_views_reopen_the_file(memmap, tmp_path):
    mm, data = memmap
    rows = ImageRows(mm, np.arange(10)[::-1])
    blob = pickle.dumps(rows)
    assert b"x.u8" in blob
    big = np.memmap(tmp_path / "big.u8", dtype=np.uint8, mode="w+", shape=(100, 64, 64))
    assert len(pickle.dumps(ImageRows(big, [0, 1]))) < 2000  # not its 400 kB
    back = pickle.loads(blob)
    assert isinstance(back.images, np.memmap)
    np.testing.assert_array_equal(back[:], rows[:])
    in_ram = pickle.loads(pickle.dumps(ImageRows(data, [1])))
    np.testing.assert_array_equal(in_ram[:], data[[1]][:, None])


def test_dataset_converts_one_batch(memmap):
    mm, data = memmap
    ds = LazyImageDataset(mm, y=np.arange(10))
    batch = ds.__getitems__([4, 1])
    assert len(batch) == 2 and len(ds) == 10
    x, y = batch[0]
    assert x.dtype == torch.float32 and x.shape == (1, 3, 4) and int(y) == 4
    torch.testing.assert_close(x, torch.from_numpy(data[4][None] / np.float32(255)))
    x0, y0 = LazyImageDataset(mm)[3]
    assert int(y0) == 0 and x0.shape == (1, 3, 4)
