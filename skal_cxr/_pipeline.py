"""Looking through a scikit-learn Pipeline: its final estimator, and the steps before it."""

from sklearn.pipeline import Pipeline

__all__ = ["final_estimator", "transform_before_final"]


def final_estimator(estimator):
    """The last step of a :class:`~sklearn.pipeline.Pipeline`, else ``estimator`` itself."""
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def transform_before_final(estimator, X):
    """``X`` through every step of a fitted Pipeline but the last (``X`` itself otherwise)."""
    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        return estimator[:-1].transform(X)
    return X
