"""Synthetic chest-X-ray-like phantoms with a graded disease severity."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_int

__all__ = ["make_cxr_phantoms", "PHANTOM_CLASS_NAMES"]

PHANTOM_CLASS_NAMES = {3: ("normal", "moderate", "severe"), 2: ("normal", "diseased")}

_DEFAULT_WEIGHTS = {3: (0.6, 0.3, 0.1), 2: (0.7, 0.3)}
_MAX_OPACITIES = 10  # candidate opacity blobs per image; severity switches them on
_CHUNK = 256  # images rendered at once (bounds memory, not results)


def make_cxr_phantoms(
    n_samples=1000,
    *,
    image_size=64,
    n_classes=3,
    weights=None,
    label_noise=None,
    n_raters=None,
    rater_noise=0.04,
    random_state=None,
    return_severity=False,
):
    """Generate chest-X-ray-like phantoms graded normal / moderate / severe.

    Each image shows a frontal thorax: a bright body outline and mediastinum
    with the heart, two darker lung fields crossed by curved ribs, a low
    frequency background texture and pixel noise, under a small random pose
    (shift, rotation, scale) and brightness / contrast change. Disease is a
    latent ``severity`` in ``[0, 1]``: patchy opacities appear in the lungs,
    more numerous and larger as severity grows (merging into dense areas),
    together with a faint diffuse haze.

    The true class of an image is ``np.digitize(severity, edges)`` with
    ``edges = np.arange(1, n_classes) / n_classes``; severity is drawn
    uniformly inside its class interval, so images near a class boundary are
    genuinely ambiguous. A fraction ``label_noise`` of the returned labels is
    then moved to an adjacent class, as a hurried rater would.

    With ``n_raters``, the labels come from simulated raters instead: each
    rater reads the severity with Gaussian error (``rater_noise``, plus a
    small personal bias of a quarter of it) and grades it with the same
    edges. Raters therefore disagree on images near a class boundary and
    agree far from one, as radiologists do; ``y`` is their majority vote
    (ties to the more severe class).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    image_size : int, default=64
        Height and width of the images, at least 16.
    n_classes : {2, 3}, default=3
        ``3``: 0 normal, 1 moderate, 2 severe. ``2``: 0 normal, 1 diseased.
        Names are in ``PHANTOM_CLASS_NAMES[n_classes]``.
    weights : array-like of shape (n_classes,), default=None
        Class proportions; normalised to sum to 1. ``None`` is
        ``(0.6, 0.3, 0.1)`` for 3 classes and ``(0.7, 0.3)`` for 2. The
        counts of the true classes are exact: ``weights * n_samples``
        rounded by the largest-remainder method so that they sum to
        ``n_samples``.
    label_noise : float, default=None
        Fraction of labels moved to an adjacent class (normal to moderate,
        severe to moderate, moderate up or down at random). Exactly
        ``round(label_noise * n_samples)`` labels are changed. ``None`` is
        0.05, or 0 with ``n_raters`` (the raters are then the noise; a
        positive value with ``n_raters`` is an error).
    n_raters : int, default=None
        Simulate this many raters (at least 2; 3 to 6 is typical) and also
        return their ratings.
    rater_noise : float, default=0.04
        Standard deviation of a rater's reading of the severity (on the
        ``[0, 1]`` scale, where a class spans ``1 / n_classes``).
    random_state : int, RandomState instance or None, default=None
        Seeds everything; an int gives the same images and labels each call.
    return_severity : bool, default=False
        Also return the latent severity.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size, image_size), dtype float32
        Images in ``[0, 1]``; bright is dense, as on a radiograph.
    y : ndarray of shape (n_samples,), dtype int64
        Class codes ``0 .. n_classes - 1``, with label noise.
    ratings : ndarray of shape (n_samples, n_raters), dtype int64
        Each rater's class code, returned when ``n_raters`` is set.
    severity : ndarray of shape (n_samples,), dtype float64
        Latent severity in ``[0, 1]``, returned when ``return_severity=True``.

    Examples
    --------
    >>> from skal_cxr.datasets import make_cxr_phantoms
    >>> X, y = make_cxr_phantoms(20, image_size=32, random_state=0)
    >>> X.shape, X.dtype, y.dtype
    ((20, 32, 32), dtype('float32'), dtype('int64'))
    >>> X, y, ratings = make_cxr_phantoms(20, image_size=32, n_raters=4, random_state=0)
    >>> ratings.shape
    (20, 4)
    """
    n_samples = check_int(n_samples, "n_samples")
    image_size = check_int(image_size, "image_size", 16)
    if n_classes not in PHANTOM_CLASS_NAMES:
        raise ValueError(f"n_classes must be 2 or 3; got {n_classes!r}.")
    weights = _check_weights(weights, n_classes)
    if n_raters is not None:
        n_raters = check_int(n_raters, "n_raters", 2)
        if not (isinstance(rater_noise, numbers.Real) and 0 <= rater_noise <= 1):
            raise ValueError(f"rater_noise must be a float in [0, 1]; got {rater_noise!r}.")
        if label_noise:
            raise ValueError(
                "label_noise and n_raters exclude each other: with raters, their "
                "disagreement is the label noise (set rater_noise)."
            )
        label_noise = 0.0
    elif label_noise is None:
        label_noise = 0.05
    if not (isinstance(label_noise, numbers.Real) and 0 <= label_noise <= 1):
        raise ValueError(f"label_noise must be a float in [0, 1]; got {label_noise!r}.")
    rng = check_random_state(random_state)

    counts = _exact_counts(weights, n_samples)
    y_true = rng.permutation(np.repeat(np.arange(n_classes), counts))
    severity = (y_true + rng.uniform(size=n_samples)) / n_classes
    y = _add_label_noise(y_true, n_classes, label_noise, rng)

    X = np.empty((n_samples, image_size, image_size), dtype=np.float32)
    for start in range(0, n_samples, _CHUNK):
        stop = min(start + _CHUNK, n_samples)
        X[start:stop] = _render(severity[start:stop], image_size, rng)
    out = [X, y]
    if n_raters is not None:
        ratings = _simulate_raters(severity, n_classes, n_raters, rater_noise, rng)
        out = [X, _majority(ratings, n_classes), ratings]
    if return_severity:
        out.append(severity)
    return tuple(out)


def _simulate_raters(severity, n_classes, n_raters, noise, rng):
    """Each rater grades ``severity + bias + error`` with the class edges."""
    edges = np.arange(1, n_classes) / n_classes
    bias = rng.normal(0, noise / 4, size=n_raters)
    read = severity[:, None] + bias[None, :] + rng.normal(0, noise, (len(severity), n_raters))
    return np.digitize(read, edges).astype(np.int64)


def _majority(ratings, n_classes):
    from ._agreement import consensus_codes

    return consensus_codes(ratings, n_classes, "majority")


def _check_weights(weights, n_classes):
    if weights is None:
        weights = _DEFAULT_WEIGHTS[n_classes]
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_classes,) or not np.all(np.isfinite(weights)):
        raise ValueError(
            f"weights must hold {n_classes} finite proportions; got {weights.tolist()}."
        )
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"weights must be non-negative with a positive sum; got {weights.tolist()}."
        )
    return weights / weights.sum()


def _exact_counts(weights, n_samples):
    """Largest-remainder rounding of ``weights * n_samples`` (sums to n_samples)."""
    raw = weights * n_samples
    counts = np.floor(raw).astype(int)
    remainder = raw - counts
    extra = np.argsort(-remainder, kind="stable")[: n_samples - counts.sum()]
    counts[extra] += 1
    return counts


def _add_label_noise(y_true, n_classes, label_noise, rng):
    y = y_true.copy()
    n_flip = int(round(label_noise * len(y)))
    if n_flip == 0:
        return y
    idx = rng.choice(len(y), size=n_flip, replace=False)
    step = np.where(rng.uniform(size=n_flip) < 0.5, -1, 1)
    step[y[idx] == 0] = 1
    step[y[idx] == n_classes - 1] = -1
    y[idx] += step
    return y


def _soft_inside(r2, edge):
    """Soft indicator of ``r2 < 1`` for a squared normalised radius ``r2``."""
    return np.clip((1.0 - np.sqrt(r2)) / edge, 0.0, 1.0)


def _smooth_noise(rng, n, size, coarse):
    """Low-frequency noise, about standard normal: a coarse grid upsampled bilinearly."""
    grid = rng.standard_normal((n, coarse, coarse)).astype(np.float32)
    centres = np.clip((np.arange(size) + 0.5) * coarse / size - 0.5, 0, coarse - 1)
    interp = np.stack(
        [np.interp(centres, np.arange(coarse), np.eye(coarse)[j]) for j in range(coarse)],
        axis=1,
    ).astype(np.float32)  # (size, coarse) bilinear weights
    return interp @ grid @ interp.T


def _render(severity, size, rng):
    """Render one chunk of phantoms with the given severities."""
    n = len(severity)
    f32 = np.float32
    s = severity.astype(f32)[:, None, None]

    # Pose: shift, rotation and scale of the whole thorax.
    dx, dy = (rng.uniform(-0.06, 0.06, (2, n, 1, 1))).astype(f32)
    theta = np.deg2rad(rng.uniform(-6, 6, (n, 1, 1))).astype(f32)
    scale = rng.uniform(0.9, 1.08, (n, 1, 1)).astype(f32)
    axis = (np.arange(size, dtype=f32) + 0.5) / size * 2 - 1
    x, yy = axis[None, None, :], axis[None, :, None]
    cos, sin = np.cos(theta), np.sin(theta)
    u = (cos * (x - dx) + sin * (yy - dy)) / scale
    v = (-sin * (x - dx) + cos * (yy - dy)) / scale
    edge = 3.0 / size  # soft edges about 1.5 pixels wide

    # Body, mediastinum, heart (dense, bright) and lungs (air, dark).
    body = _soft_inside((u / 0.88) ** 2 + ((v - 0.08) / 1.05) ** 2, edge * 2)
    width = rng.uniform(0.9, 1.1, (2, n, 1, 1)).astype(f32)
    # Lungs: taller than wide, narrower towards the apex.
    taper = 1.0 - 0.35 * np.clip(-(v + 0.1), 0, None)
    lungs = np.zeros_like(u)
    for sign, w in zip((-1, 1), width):
        r2 = ((u - sign * 0.37) / (0.25 * w * taper)) ** 2 + ((v + 0.02) / 0.62) ** 2
        lungs = np.maximum(lungs, _soft_inside(r2, edge * 3))
    heart = _soft_inside(((u - 0.12) / 0.3) ** 2 + ((v - 0.36) / 0.24) ** 2, edge * 6)
    lungs = lungs * (1 - 0.85 * heart)
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * (v + 0.45 * u**2) / 0.19)
    ribs = np.clip((ribs - 0.55) / 0.45, 0, 1) * body

    img = 0.08 + 0.52 * body - 0.3 * lungs + 0.12 * ribs * (0.4 + 0.6 * lungs)
    img += 0.06 * heart

    # Disease: patchy opacities inside the lungs, plus a faint haze.
    opacity = np.zeros_like(u)
    shape = (n, _MAX_OPACITIES)
    side = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    cu = side * 0.37 + rng.uniform(-0.16, 0.16, shape)
    cv = rng.uniform(-0.5, 0.45, shape)
    radius = rng.uniform(0.08, 0.15, shape) * (0.7 + 1.2 * severity[:, None])
    active = rng.uniform(size=shape) < 1.1 * severity[:, None] - 0.05
    amp = rng.uniform(0.6, 1.0, shape)
    # Render only the active blobs: move them first in each row, then draw blob
    # k for the images having more than k of them.
    order = np.argsort(~active, axis=1, kind="stable")
    cu, cv, radius, amp = (
        np.take_along_axis(a, order, axis=1).astype(f32) for a in (cu, cv, radius, amp)
    )
    n_active = active.sum(axis=1)
    for k in range(n_active.max(initial=0)):
        idx = np.flatnonzero(n_active > k)
        c = (cu[idx, k, None, None], cv[idx, k, None, None], radius[idx, k, None, None])
        d2 = ((u[idx] - c[0]) ** 2 + (v[idx] - c[1]) ** 2) / c[2] ** 2
        opacity[idx] += amp[idx, k, None, None] * np.exp(-d2 * d2)
    patchy = 0.6 + 0.6 * _smooth_noise(rng, n, size, max(6, size // 3))
    opacity = np.clip(opacity, 0, 1.2) * np.clip(patchy, 0, None)
    img += lungs * (0.6 * opacity + 0.06 * s)

    # Acquisition: background texture, brightness / contrast, pixel noise.
    img += 0.04 * _smooth_noise(rng, n, size, 5)
    gain = rng.uniform(0.9, 1.1, (n, 1, 1)).astype(f32)
    offset = rng.uniform(-0.04, 0.04, (n, 1, 1)).astype(f32)
    img = gain * img + offset
    img += rng.normal(0, 0.025, img.shape).astype(f32)
    return np.clip(img, 0, 1).astype(f32)
