import hashlib
import io
import re

import numpy as np
import pytest

from skal_cxr.datasets import MEDMNIST_MD5, _medmnist, fetch_medmnist, load_medmnist

# Official counts (MedMNIST v2 README / shared data README): (normal, pneumonia).
PNEUMONIA_COUNTS = {"train": (1214, 3494), "val": (135, 389), "test": (234, 390)}


def write_fake_npz(path, sizes=(("train", 6), ("val", 2), ("test", 3)), label_shape=1):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in sizes:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, label_shape), dtype=np.uint8)
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_pneumoniamnist_split_counts(pneumoniamnist_path, split):
    X, y = load_medmnist("pneumoniamnist", split=split, root=pneumoniamnist_path.parent)
    n_normal, n_pneumonia = PNEUMONIA_COUNTS[split]
    assert X.shape == (n_normal + n_pneumonia, 28, 28) and X.dtype == np.uint8
    assert y.shape == (len(X),) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [n_normal, n_pneumonia]


def test_pneumoniamnist_all_concatenates_in_order(pneumoniamnist_path, pneumoniamnist):
    X, y = load_medmnist("pneumoniamnist", split="all", root=pneumoniamnist_path.parent)
    assert X.shape == (4708 + 524 + 624, 28, 28)
    assert np.bincount(y).tolist() == [1214 + 135 + 234, 3494 + 389 + 390]
    np.testing.assert_array_equal(X[-624:], pneumoniamnist["test_images"])


def test_default_root_is_the_data_home(pneumoniamnist_path, monkeypatch):
    monkeypatch.setenv("SKAL_CXR_DATA", str(pneumoniamnist_path.parent))
    X, _ = load_medmnist(split="val")
    assert len(X) == 524


def test_fake_file_labels_are_flattened(tmp_path):
    arrays = write_fake_npz(tmp_path / "fakemnist.npz")
    X, y = load_medmnist("fakemnist", split="test", root=tmp_path)
    np.testing.assert_array_equal(X, arrays["test_images"])
    np.testing.assert_array_equal(y, arrays["test_labels"][:, 0])
    assert y.dtype == np.int64


def test_multi_label_files_keep_their_label_columns(tmp_path):
    write_fake_npz(tmp_path / "fakechest.npz", label_shape=14)
    _, y = load_medmnist("fakechest", split="train", root=tmp_path)
    assert y.shape == (6, 14) and y.dtype == np.int64


def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_medmnist("pneumoniamnist", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "pneumoniamnist.npz") in message
    assert "download=True" in message
    assert "https://zenodo.org/records/10519652/files/pneumoniamnist.npz" in message
    assert "SKAL_CXR_DATA" in message


def test_bad_split(tmp_path):
    write_fake_npz(tmp_path / "fakemnist.npz")
    with pytest.raises(ValueError, match="split must be one of"):
        load_medmnist("fakemnist", split="validation", root=tmp_path)


def test_bad_layout(tmp_path):
    np.savez(tmp_path / "odd.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="does not have the MedMNIST npz layout.*train_images"):
        load_medmnist("odd", root=tmp_path)


def test_mismatched_images_and_labels(tmp_path):
    np.savez(
        tmp_path / "odd.npz",
        train_images=np.zeros((3, 28, 28), np.uint8),
        train_labels=np.zeros((2, 1), np.uint8),
    )
    with pytest.raises(ValueError, match="one label row per image"):
        load_medmnist("odd", root=tmp_path)


# -- download: never touches the network ---------------------------------------
@pytest.fixture
def served(tmp_path, monkeypatch):
    """A fake MedMNIST file served through a file:// URL."""
    source = tmp_path / "server"
    source.mkdir()
    arrays = write_fake_npz(source / "fakemnist.npz")
    md5 = hashlib.md5((source / "fakemnist.npz").read_bytes()).hexdigest()
    monkeypatch.setattr(_medmnist, "MEDMNIST_URL", source.as_uri() + "/{name}.npz")
    return arrays, md5


def test_download_with_matching_checksum(served, tmp_path, monkeypatch):
    arrays, md5 = served
    monkeypatch.setitem(MEDMNIST_MD5, "fakemnist", md5)
    root = tmp_path / "home" / "sub"  # created on download
    X, y = load_medmnist("fakemnist", split="val", root=root, download=True)
    np.testing.assert_array_equal(X, arrays["val_images"])
    assert sorted(p.name for p in root.iterdir()) == ["fakemnist.npz"]
    # An existing file is used as it is, without downloading again.
    monkeypatch.setattr(_medmnist, "MEDMNIST_URL", "file:///nowhere/{name}.npz")
    load_medmnist("fakemnist", root=root, download=True)


def test_download_with_mismatching_checksum_deletes_the_file(served, tmp_path, monkeypatch):
    monkeypatch.setitem(MEDMNIST_MD5, "fakemnist", "0" * 32)
    root = tmp_path / "home"
    with pytest.raises(ValueError, match="Checksum mismatch.*expected 0000"):
        load_medmnist("fakemnist", root=root, download=True)
    assert list(root.iterdir()) == []


def test_download_requests_the_official_url(tmp_path, monkeypatch):
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(b"not the real file")

    monkeypatch.setattr(_medmnist.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(ValueError, match="Checksum mismatch"):
        fetch_medmnist("pneumoniamnist", tmp_path)
    assert requested == ["https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1"]
    assert list(tmp_path.iterdir()) == []


def test_download_of_an_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Cannot download 'fakemnist'"):
        load_medmnist("fakemnist", root=tmp_path, download=True)


def test_known_checksums_are_comparable_with_hexdigest():
    assert MEDMNIST_MD5["pneumoniamnist"] == "28209eda62fecd6e6a2d98b1501bb15f"
    # the download compares hashlib's hexdigest (32 lowercase hex digits) with
    # these strings: any other spelling could never match
    for name, value in MEDMNIST_MD5.items():
        assert re.fullmatch(r"[0-9a-f]{32}", value), name


def test_download_checks_the_md5_of_every_byte(tmp_path, monkeypatch):
    """The digest covers the whole file, past the first 1 MiB chunk read."""
    source = tmp_path / "server"
    source.mkdir()
    content = bytes(range(256)) * 8192  # 2 MiB: two chunks
    (source / "fakemnist.npz").write_bytes(content)
    monkeypatch.setattr(_medmnist, "MEDMNIST_URL", source.as_uri() + "/{name}.npz")
    # the digest of the same bytes with one byte of the second chunk changed
    altered = bytearray(content)
    altered[-1] ^= 1
    monkeypatch.setitem(MEDMNIST_MD5, "fakemnist", hashlib.md5(bytes(altered)).hexdigest())
    with pytest.raises(ValueError, match="Checksum mismatch"):
        fetch_medmnist("fakemnist", tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []
    # the file's own digest is accepted and the bytes arrive unchanged
    monkeypatch.setitem(MEDMNIST_MD5, "fakemnist", hashlib.md5(content).hexdigest())
    path = fetch_medmnist("fakemnist", tmp_path / "home")
    assert path == tmp_path / "home" / "fakemnist.npz" and path.read_bytes() == content


def test_bundled_pneumoniamnist_is_the_checksummed_file():
    from skal_cxr.datasets import BUNDLED_SHA256, bundled_path

    digest = hashlib.sha256(bundled_path("pneumoniamnist").read_bytes()).hexdigest()
    assert digest == BUNDLED_SHA256["pneumoniamnist"]
    with pytest.raises(ValueError, match="not shipped"):
        bundled_path("chestmnist")


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_load_pneumoniamnist_offline_has_the_official_counts(split, monkeypatch, tmp_path):
    from skal_cxr.datasets import load_pneumoniamnist

    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(_medmnist.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("SKAL_CXR_DATA", str(tmp_path))  # an empty data home
    X, y = load_pneumoniamnist(split)
    assert X.shape == (sum(PNEUMONIA_COUNTS[split]), 28, 28) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == list(PNEUMONIA_COUNTS[split])
    # load_medmnist falls back to the shipped copy when the data home lacks the file
    X2, y2 = load_medmnist("pneumoniamnist", split=split)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    # but an explicit folder without the file is an error, not a silent substitute
    with pytest.raises(FileNotFoundError):
        load_medmnist("pneumoniamnist", split=split, root=tmp_path)


def test_bundled_copy_matches_the_shared_file(shared_pneumoniamnist_path, shared_pneumoniamnist):
    from skal_cxr.datasets import bundled_path, load_pneumoniamnist

    assert shared_pneumoniamnist_path != bundled_path("pneumoniamnist")
    X, y = load_pneumoniamnist("all")
    np.testing.assert_array_equal(X[:4708], shared_pneumoniamnist["train_images"])
    np.testing.assert_array_equal(y[-624:], shared_pneumoniamnist["test_labels"].ravel())


def test_shipped_data_is_declared_as_package_data():
    """setup.cfg and MANIFEST.in name every shipped file, so that wheels and sdists carry it."""
    import configparser
    import fnmatch
    from pathlib import Path

    from skal_cxr.datasets import BUNDLED_SHA256, bundled_path

    root = Path(__file__).resolve().parents[1]
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["skal_cxr.datasets"].split(",")]
    manifest = (root / "MANIFEST.in").read_text()
    for name in BUNDLED_SHA256:
        rel = bundled_path(name).relative_to(root / "skal_cxr" / "datasets").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
        assert "skal_cxr/datasets/data/*.npz" in manifest
    assert "NOTICE" in cfg["metadata"]["license_files"]
    assert "Kermany" in (root / "NOTICE").read_text()
