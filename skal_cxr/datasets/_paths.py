"""Which file an image name means: one rule for every way images are registered.

An image is named relative to its folder. The name is refused from its text
alone when it is empty, absolute, or holds ``..``; otherwise it is resolved
through its symbolic links, and refused if it lands outside the folder (no
file outside is opened or tested, and its name is not echoed). Two names
are *the same file* when they reach the same file on disk: the same real
path or the same device and inode, so a symbolic link, a hard link, ``./``
or ``a//b`` spellings and the file itself are one film, registered once.
:func:`~skal_cxr.datasets.load_image_folder` and ``skal-cxr label init``
both follow this rule.
"""

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = ["resolve_image_name", "file_identity", "repeated_files"]


def resolve_image_name(image_dir, name):
    """The real path of an image name inside ``image_dir``, or why it is refused.

    Parameters
    ----------
    image_dir : str or path-like
        The image folder.
    name : str
        The file name, relative to ``image_dir``.

    Returns
    -------
    path : pathlib.Path or None
        The real path (symbolic links resolved); ``None`` when refused.
    reason : str or None
        Why the name is refused; ``None`` when it is not.
    """
    root = os.path.realpath(image_dir)
    if not name:
        return None, "empty file name"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute():
        return None, "absolute path; give it relative to image_dir"
    if ".." in PurePosixPath(name).parts or ".." in PureWindowsPath(name).parts:
        return None, "path leaves image_dir ('..' is not allowed)"
    real = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, real]) != root:
        return None, "path leaves image_dir (through a symbolic link)"
    return Path(real), None


def file_identity(path):
    """What makes two paths the same file: ``(device, inode)``, else the real path.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    identity : tuple
    """
    try:
        st = os.stat(path)
    except OSError:  # missing: only its real path can tell
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)


def repeated_files(paths):
    """Which paths repeat an earlier path's file (through any link or spelling).

    Parameters
    ----------
    paths : sequence of path-like or None
        ``None`` entries (refused names) are skipped.

    Returns
    -------
    repeated : dict
        ``{i: j}``: ``paths[i]`` is the same file as the earlier ``paths[j]``
        (the first of its file).
    """
    first, repeated = {}, {}
    for i, path in enumerate(paths):
        if path is None:
            continue
        key = file_identity(path)
        if key in first:
            repeated[i] = first[key]
        else:
            first[key] = i
    return repeated
