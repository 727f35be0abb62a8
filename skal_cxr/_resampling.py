"""imbalanced-learn samplers applied to the labeled set of every fit."""

import numpy as np
from sklearn.base import clone

__all__ = ["resolve_sampler", "resample_labeled", "SAMPLER_ALIASES"]

#: Short names accepted wherever a sampler can be named (CLI, simulation).
SAMPLER_ALIASES = {
    "random_over": "RandomOverSampler",
    "random_under": "RandomUnderSampler",
    "smote": "SMOTE",
}


def resolve_sampler(sampler):
    """An unfitted imbalanced-learn sampler from an object, a class name or an alias.

    Parameters
    ----------
    sampler : None, str or sampler
        ``None``; an object with ``fit_resample``; or the name of a class in
        :mod:`imblearn.over_sampling`, :mod:`imblearn.under_sampling` or
        :mod:`imblearn.combine` (``"RandomOverSampler"``), or an alias of
        ``SAMPLER_ALIASES`` (``"random_over"``, ``"random_under"``,
        ``"smote"``); ``"none"`` is ``None``.

    Returns
    -------
    sampler : sampler or None
        A fresh clone (``fit`` never changes the user's object).

    Examples
    --------
    >>> from skal_cxr._resampling import resolve_sampler
    >>> resolve_sampler("random_over")
    RandomOverSampler()
    """
    if sampler is None or (isinstance(sampler, str) and sampler == "none"):
        return None
    if isinstance(sampler, str):
        from imblearn import combine, over_sampling, under_sampling

        name = SAMPLER_ALIASES.get(sampler, sampler)
        for module in (over_sampling, under_sampling, combine):
            if name in module.__all__:
                return getattr(module, name)()
        known = sorted(SAMPLER_ALIASES) + sorted(
            over_sampling.__all__ + under_sampling.__all__ + combine.__all__
        )
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(known)}.")
    if not hasattr(sampler, "fit_resample"):
        raise ValueError(
            f"sampler must be an imbalanced-learn sampler (with fit_resample); got {sampler!r}."
        )
    return clone(sampler)


def resample_labeled(sampler, X, y_codes, random_state):
    """Resample a labeled set of images with ``sampler``.

    The sampler sees each image flattened to one row. Samplers that select
    existing images (random over- and under-sampling, NearMiss, Tomek links,
    ...) expose ``sample_indices_``: the original images are indexed, so any
    image shape works and nothing is copied but the selection. Samplers that
    synthesise images (SMOTE and its kin) return interpolated pixels, reshaped
    back into images.

    Parameters
    ----------
    sampler : sampler
        From :func:`resolve_sampler`; its ``random_state`` is set from
        ``random_state`` when it has one and it is unset.
    X : ndarray of shape (n_images, ...)
    y_codes : ndarray of shape (n_images,)
    random_state : int, RandomState instance or None

    Returns
    -------
    X_res, y_res : ndarrays
    sampler : the fitted sampler
    """
    if "random_state" in sampler.get_params() and sampler.get_params()["random_state"] is None:
        sampler.set_params(random_state=random_state)
    flat = X.reshape(len(X), -1)
    flat_res, y_res = sampler.fit_resample(flat, y_codes)
    indices = getattr(sampler, "sample_indices_", None)
    if indices is not None:
        return X[indices], np.asarray(y_codes)[indices], sampler
    X_res = np.asarray(flat_res, dtype=X.dtype).reshape((len(flat_res),) + X.shape[1:])
    return X_res, np.asarray(y_res, dtype=np.int64), sampler
