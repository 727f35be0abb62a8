"""MCDropoutCNN refuses bad input, whatever its form, before it can give a wrong answer."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from torch.utils.data import Dataset, TensorDataset

from skal_cxr import CXRPreprocessor, MCDropoutCNN
from skal_cxr._validation import InvalidParameterError
from skal_cxr.models import training_epochs

FAST = dict(
    max_epochs=1,
    batch_size=16,
    min_train_steps=0,
    module__width=8,
    module__n_blocks=2,
    random_state=0,
)
CLASSES = ["moderate", "normal", "severe"]


class Items(Dataset):
    """A map-style Dataset over a list of items, yielding them as they are."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.fixture
def coded(toy_images):
    X, y = toy_images
    return X, np.searchsorted(CLASSES, y)


@pytest.fixture(scope="module")
def fitted16():
    rng = np.random.default_rng(0)
    X = rng.random((24, 16, 16), dtype=np.float32)
    return MCDropoutCNN(**FAST).fit(X, np.tile([0, 1], 12)), X


# -- Datasets get the same checks as arrays -------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_dataset_with_nan_images_raises_at_fit_and_predict(coded, bad):
    X, codes = coded
    X = X.copy()
    X[37, 3, 3] = bad
    ds = TensorDataset(torch.from_numpy(X[:, None]), torch.from_numpy(codes))
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(Dataset item 37\)"):
        MCDropoutCNN(classes=CLASSES, **FAST).fit(ds)
    net = MCDropoutCNN(classes=CLASSES, **FAST).fit(X[:30], np.array(CLASSES)[codes[:30]])
    for method in (net.predict_proba, net.predict_proba_samples, net.predict, net.embed):
        with pytest.raises(ValueError, match=r"NaN or infinity \(Dataset item 37\)"):
            method(ds)


@pytest.mark.parametrize("code", [3, -1, 1.5])
def test_dataset_with_out_of_range_labels_raises(coded, code):
    X, codes = coded
    codes = codes.astype(np.float64 if isinstance(code, float) else np.int64)
    codes[11] = code
    ds = TensorDataset(torch.from_numpy(X[:, None]), torch.from_numpy(codes))
    with pytest.raises(
        ValueError,
        match=rf"Dataset item 11 has label code {code}; the "
        r"codes of classes \['moderate', 'normal', "
        r"'severe'\] are 0 to 2",
    ):
        MCDropoutCNN(classes=CLASSES, **FAST).fit(ds)


def test_dataset_without_labels_cannot_train(coded):
    X, _ = coded
    with pytest.raises(ValueError, match=r"item 0 yields no label"):
        MCDropoutCNN(classes=CLASSES, **FAST).fit(TensorDataset(torch.from_numpy(X)))


def test_dataset_of_images_only_predicts_like_the_array(coded):
    X, codes = coded
    net = MCDropoutCNN(classes=CLASSES, **FAST).fit(X, np.array(CLASSES)[codes])
    expected = net.predict_proba(X)
    images_only = [
        TensorDataset(torch.from_numpy(X[:, None])),  # 1-tuples
        Items([torch.from_numpy(x) for x in X]),  # bare (H, W) tensors
        Items(list(X[:, None])),  # bare numpy arrays
        Items([(x, "any label") for x in X]),  # labels are ignored when predicting
        Items(list(np.round(X * 255).clip(0, 255).astype(np.uint8))),  # scaled like arrays
    ]
    for ds in images_only[:-1]:
        np.testing.assert_allclose(net.predict_proba(ds), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        net.predict_proba(images_only[-1]),
        net.predict_proba(np.round(X * 255).clip(0, 255).astype(np.uint8)),
        atol=1e-6,
    )


def test_dataset_with_mixed_image_sizes(coded):
    X, codes = coded
    items = [(torch.from_numpy(x[None]), int(c)) for x, c in zip(X, codes)]
    items[5] = (torch.zeros(1, 8, 8), 0)
    with pytest.raises(
        ValueError,
        match=r"Dataset item 5 is an image of size 8x8, but the "
        r"others are 16x16",
    ):
        MCDropoutCNN(classes=CLASSES, **FAST).fit(Items(items))


def test_dataset_with_colour_images(coded):
    X, codes = coded
    ds = Items([(torch.zeros(3, 16, 16), 0)] * 4)
    with pytest.raises(ValueError, match=r"single-channel.*\(Dataset item 0\)"):
        MCDropoutCNN(classes=CLASSES, **FAST).fit(ds)


# -- image size at prediction -----------------------------------------------------------
def test_predicting_on_another_image_size_raises(fitted16):
    net, X = fitted16
    assert net.image_shape_ == (16, 16)
    other = np.random.default_rng(1).random((3, 32, 32), dtype=np.float32)
    message = (
        r"X has images of size 32x32, but the network was trained on 16x16: resize "
        r"them .*CXRPreprocessor\(size=\(16, 16\)\)"
    )
    for method in (
        net.predict_proba,
        net.predict,
        net.predict_proba_samples,
        net.embed,
        lambda Z: net.reduce_proba_samples(Z, [np.mean]),
    ):
        with pytest.raises(ValueError, match=message):
            method(other)
    with pytest.raises(ValueError, match="size 32x32, but the network was trained on 16x16"):
        net.predict_proba(TensorDataset(torch.from_numpy(other[:, None])))
    with pytest.raises(ValueError, match="size 32x32, but the network was trained on 16x16"):
        net.partial_fit(other, [0, 1, 0])


def test_a_preprocessing_step_resizes_at_prediction(fitted16):
    _, X = fitted16
    y = np.tile([0, 1], 12)
    pipe = make_pipeline(CXRPreprocessor(size=16, scaling=None), MCDropoutCNN(**FAST)).fit(X, y)
    big = torch.nn.functional.interpolate(
        torch.from_numpy(X[:, None]), size=(32, 32), mode="nearest"
    ).numpy()[:, 0]
    proba = pipe.predict_proba(big)
    assert proba.shape == (24, 2)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=0.05)


def test_refit_on_another_size_is_a_new_network(fitted16):
    net, X = fitted16
    small = X[:, :8, :8]
    other = MCDropoutCNN(**FAST).fit(small, np.tile([0, 1], 12))
    assert other.image_shape_ == (8, 8) and other.predict(small).shape == (24,)


# -- batch size and lists of images -------------------------------------------------------
# -- parameters ---------------------------------------------------------------------------
BAD_PARAMS = [
    ("max_epochs", -1),
    ("max_epochs", 1.5),
    ("max_epochs", True),
    ("batch_size", 0),
    ("batch_size", -2),
    ("batch_size", 2.5),
    ("batch_size", True),
    ("batch_size", "32"),
    ("min_train_steps", -1),
    ("min_train_steps", 2.5),
    ("train_split", 0.2),
    ("classes", "ab"),
    ("classes", 3),
    ("class_weight", "auto"),
    ("class_weight", ["balanced"]),
    ("sampler", 3),
    ("sampler", object()),
    ("n_mc_samples", 0),
    ("n_mc_samples", 2.5),
    ("n_mc_samples", True),
    ("mc_predict", "yes"),
    ("mc_predict", 1),
    ("random_state", "seed"),
    ("random_state", 1.5),
    ("augment", "hflip"),
    ("augment", 3),
    ("precision", "float16"),
    ("precision", None),
    ("scheduler", 8786),
    ("device", 1.5),
    ("device", -1),
    ("verbose", "loud"),
    ("verbose", -1),
]


@pytest.mark.parametrize("param, value", BAD_PARAMS, ids=lambda v: repr(v))
def test_bad_parameter_raises_before_training(fitted16, param, value):
    _, X = fitted16
    net = MCDropoutCNN(**{**FAST, param: value})
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of MCDropoutCNN"):
        net.fit(X, np.tile([0, 1], 12))
    assert not hasattr(net, "module_")


@pytest.mark.parametrize("batch_size", [0, 2.5, True])
def test_bad_batch_size_after_fit_and_in_training_epochs(fitted16, batch_size):
    net, X = fitted16
    net.set_params(batch_size=batch_size)
    try:
        with pytest.raises(InvalidParameterError, match="'batch_size' parameter"):
            net.predict_proba(X)
        with pytest.raises(InvalidParameterError, match="'batch_size' parameter"):
            net.predict_proba_samples(X)
    finally:
        net.set_params(batch_size=16)
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter of training_epochs"):
        training_epochs(24, batch_size, max_epochs=1, min_train_steps=10)


@pytest.mark.parametrize(
    "params",
    [
        {"batch_size": -1, "max_epochs": 0, "min_train_steps": 2, "n_mc_samples": 1},
        {
            "n_mc_samples": np.int64(2),
            "min_train_steps": None,
            "mc_predict": np.True_,
            "random_state": np.random.RandomState(0),
            "device": torch.device("cpu"),
        },
        {
            "class_weight": {0: 2.0},
            "sampler": "random_over",
            "augment": lambda x: x,
            "precision": "bfloat16",
            "classes": (0, 1),
            "verbose": False,
            "train_split": None,
        },
    ],
    ids=["counts", "types", "options"],
)
def test_edge_parameter_values_are_valid(fitted16, params):
    _, X = fitted16
    net = MCDropoutCNN(**{**FAST, **params}).fit(X, np.tile([0, 1], 12))
    assert net.predict_proba_samples(X[:3]).shape[1:] == (3, 2)


def test_batch_size_minus_one_is_one_batch(fitted16):
    net, X = fitted16
    full = MCDropoutCNN(**{**FAST, "batch_size": -1}).fit(X, np.tile([0, 1], 12))
    assert full.predict_proba(X).shape == (24, 2)


def test_list_of_differently_sized_images(fitted16):
    net, X = fitted16
    images = [np.zeros((16, 16), np.float32)] * 3 + [np.zeros((20, 16), np.float32)]
    message = (
        r"X is a list of images of different sizes \(3 of 16x16, 1 of 20x16\); "
        r"resize them to one size"
    )
    with pytest.raises(ValueError, match=message):
        net.predict_proba(images)
    with pytest.raises(ValueError, match=message):
        MCDropoutCNN(**FAST).fit(images, [0, 1, 0, 1])
    # a list of equal sizes is an array
    np.testing.assert_array_equal(net.predict_proba(list(X)), net.predict_proba(X))


def test_preprocessor_resizes_a_list_of_different_sizes():
    images = [np.full((16, 16), 0.5, np.float32), np.full((20, 12), 0.25, np.float32)]
    out = CXRPreprocessor(size=8, scaling=None).fit_transform(images)
    assert out.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.5, 0.25], atol=1e-6)
    with pytest.raises(ValueError, match="list of images of different sizes"):
        CXRPreprocessor(size=None).fit_transform(images)
