"""Tests of skal_cxr.datasets._paths: one rule for which file an image name means."""

import os

import numpy as np
import pytest
from PIL import Image

from skal_cxr.datasets import load_image_folder
from skal_cxr.datasets._paths import file_identity, repeated_files, resolve_image_name


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "img"
    (root / "sub").mkdir(parents=True)
    for name, value in [("a.png", 10), ("b.png", 200)]:
        Image.fromarray(np.full((6, 6), value, np.uint8)).save(root / name)
    (root / "sub" / "link.png").symlink_to(root / "a.png")
    os.link(root / "b.png", root / "hard.png")
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "out.png").symlink_to(tmp_path / "secret.png")
    return root


def test_names_are_resolved_inside_the_folder(folder):
    assert resolve_image_name(folder, "sub/link.png") == (folder.resolve() / "a.png", None)
    assert resolve_image_name(folder, "./a.png")[0] == folder.resolve() / "a.png"
    for name, reason in [
        ("", "empty file name"),
        ("/etc/passwd", "absolute path"),
        ("../secret.png", "'..' is not allowed"),
        ("out.png", "through a symbolic link"),
    ]:
        path, why = resolve_image_name(folder, name)
        assert path is None and reason in why


def test_links_and_spellings_of_one_file_are_one_file(folder):
    names = ["a.png", "b.png", "sub/link.png", "hard.png", ".//a.png", "missing.png", None]
    paths = [None if n is None else folder / n for n in names]
    assert repeated_files(paths) == {2: 0, 3: 1, 4: 0}
    assert file_identity(folder / "hard.png") == file_identity(folder / "b.png")
    assert file_identity(folder / "a.png") != file_identity(folder / "b.png")


def test_load_image_folder_refuses_a_hard_link_as_the_same_file(folder, tmp_path):
    (tmp_path / "l.csv").write_text("filename,label\nb.png,0\nhard.png,1\na.png,0\n")
    with pytest.raises(ValueError, match=r"line 3 \(hard.png\): same file as line 2"):
        load_image_folder(tmp_path / "l.csv", folder)
