"""scikit-learn's estimator checks on MCDropoutCNN, CXRPreprocessor and ActiveLearner.

scikit-learn's common checks feed 2-D tables ``(n_samples, n_features)``.
:class:`ActiveLearner` takes whatever its estimator takes, so with a
``LogisticRegression`` inside it runs every check. :class:`MCDropoutCNN` and
:class:`CXRPreprocessor` take images only (their tags say
``two_d_array=False, three_d_array=True``), for which scikit-learn skips its
data checks; they run every check that needs no data, and the data checks
are repeated here on images (``check_image_*``).
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_param_validation,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)

from skal_cxr import ActiveLearner, CXRPreprocessor, MCDropoutCNN
from skal_cxr.strategies import random_sampling


@parametrize_with_checks([ActiveLearner(LogisticRegression(), query_strategy=random_sampling)])
def test_sklearn_checks_active_learner(estimator, check):
    check(estimator)


IMAGE_ESTIMATORS = ["MCDropoutCNN", "CXRPreprocessor"]


@pytest.fixture
def estimator(request, tiny_net):
    """The image estimator named by the test's parameter, unfitted."""
    return {"MCDropoutCNN": tiny_net, "CXRPreprocessor": lambda: CXRPreprocessor(size=4)}[
        request.param
    ]()


DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_get_params_invariance,
    check_set_params,
    check_do_not_raise_errors_in_init_or_set_params,
    check_mixin_order,
]


def _id(obj):
    return getattr(obj, "__name__", type(obj).__name__)


# (estimator, check) -> reason; each one also fails for a plain skorch NeuralNet
IMAGE_EXPECTED_FAILURES = {
    ("MCDropoutCNN", "check_no_attributes_set_in_init"): (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_ and "
        "stores module__* arguments as attributes"
    ),
    ("MCDropoutCNN", "check_set_params"): (
        "skorch's set_params initializes callbacks, modules and optimizers at once, so "
        "the check's nonsense values (a float as callbacks) fail there rather than at fit"
    ),
}


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=_id)
@pytest.mark.parametrize("estimator", IMAGE_ESTIMATORS, indirect=True)
def test_sklearn_data_free_checks_on_image_estimators(estimator, check, request):
    name = type(estimator).__name__
    reason = IMAGE_EXPECTED_FAILURES.get((name, check.__name__))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    check(name, clone(estimator))


@pytest.mark.parametrize(
    "estimator",
    [
        ActiveLearner(LogisticRegression(), query_strategy=random_sampling),
        CXRPreprocessor(size=4),
    ],
    ids=_id,
)
def test_check_param_validation(estimator):
    # not among parametrize_with_checks' checks; it needs every parameter constrained,
    # so MCDropoutCNN (skorch's parameters are skorch's) has its own in test_models_input
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", IMAGE_ESTIMATORS, indirect=True)
def test_tags_say_images(estimator):
    tags = get_tags(estimator)
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array
    assert tags.requires_fit is isinstance(estimator, MCDropoutCNN)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    X = rng.normal(0.3 + 0.4 * y[:, None, None], 0.1, (24, 8, 8)).astype(np.float32)
    return X, y


def _fit(estimator, X, y):
    return estimator.fit(X, y) if isinstance(estimator, MCDropoutCNN) else estimator.fit(X)


def _outputs(estimator, X):
    if isinstance(estimator, MCDropoutCNN):
        return estimator.predict_proba(X)
    return estimator.transform(X)


@pytest.mark.parametrize("estimator", IMAGE_ESTIMATORS, indirect=True)
def test_check_image_fit_returns_self_keeps_params_and_is_idempotent(estimator, images):
    X, y = images
    est = clone(estimator)
    params = est.get_params()
    assert _fit(est, X, y) is est
    assert est.get_params().keys() == params.keys()
    first = _outputs(est, X)
    np.testing.assert_allclose(_outputs(_fit(est, X, y), X), first, rtol=1e-5)


@pytest.mark.parametrize("estimator", IMAGE_ESTIMATORS, indirect=True)
def test_check_image_pickle_and_clone(estimator, images):
    X, y = images
    est = _fit(clone(estimator), X, y)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(_outputs(restored, X), _outputs(est, X), rtol=1e-6)
    assert not hasattr(clone(est), "module_")


def test_check_image_unfitted_net_raises(tiny_net, images):
    X, _ = images
    for method in ("predict", "predict_proba", "predict_proba_samples", "embed"):
        with pytest.raises(NotFittedError):
            getattr(tiny_net(), method)(X)


def test_check_image_stateless_preprocessor_needs_no_fit(images):
    X, _ = images
    np.testing.assert_array_equal(
        CXRPreprocessor(size=4).transform(X), CXRPreprocessor(size=4).fit(X).transform(X)
    )


def test_check_image_fitted_net_hides_private_state(tiny_net, images):
    X, y = images
    unfitted = tiny_net()
    net = clone(unfitted).fit(X, y)
    assert net.get_params(deep=False).keys() == unfitted.get_params(deep=False).keys()
    # the flags fit sets while skorch trains on label codes are gone afterwards
    for flag in ("_fitting_codes_", "_training_classes_"):
        assert flag not in vars(net) and flag not in repr(net)
    net.partial_fit(X, y)
    assert "_training_classes_" not in vars(net)


@pytest.mark.parametrize("y", [np.linspace(0, 1, 24), np.full(24, np.nan)])
def test_check_image_classifier_rejects_continuous_targets(tiny_net, images, y):
    X, _ = images
    with pytest.raises(ValueError, match="continuous|NaN|Input y contains"):
        tiny_net().fit(X, y)


def test_check_image_column_labels_are_accepted(tiny_net, images):
    X, y = images
    np.testing.assert_array_equal(tiny_net().fit(X, y[:, None]).classes_, [0, 1])
