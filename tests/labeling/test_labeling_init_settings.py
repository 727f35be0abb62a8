"""init_project's arguments as frozen groups, checked in one place (``_init_settings``)."""

import dataclasses
import inspect

import pytest

from skal_cxr._budget import budget_count, check_budget
from skal_cxr.exceptions import ConfigError, LabelingError
from skal_cxr.labeling import init_project
from skal_cxr.labeling._init_settings import InitSettings


def _defaults(**given):
    """init_project's keyword defaults, with ``given``."""
    defaults = {
        k: p.default
        for k, p in inspect.signature(init_project).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, "classes": ["normal", "severe"], **given}


def test_the_defaults_resolve_per_model():
    view = InitSettings.from_keywords(**_defaults())
    assert view.rounds.strategy == "typicality_until_5_then_max_entropy"
    assert view.rounds.cold_start == "typicality"
    assert (view.rounds.initial_size, view.rounds.reserve_size) == (20, 20)
    cnn = InitSettings.from_keywords(**_defaults(model="cnn", query_size=7))
    assert (cnn.rounds.strategy, cnn.rounds.cold_start) == ("mean_std", "random")
    assert (cnn.rounds.initial_size, cnn.rounds.reserve_size) == (7, 7)
    assert view.images.image_size == [64, 64] and view.raters.lease_seconds == 3600.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.rounds.query_size = 3


@pytest.mark.parametrize(
    "given, message",
    [
        ({"labels_per_image": 0}, "'labels_per_image' parameter of init_project"),
        ({"consensus": "vote"}, "'consensus' parameter of init_project"),
        ({"model": "vit"}, "'model' parameter of init_project"),
        ({"cold_start": "oracle"}, "'cold_start' parameter of init_project"),
        ({"pool_size": "some"}, "'pool_size' parameter of init_project"),
        ({"lease_seconds": 0}, "'lease_seconds' parameter of init_project"),
        ({"stop_threshold": 1.5}, "'stop_threshold' parameter of init_project"),
        ({"n_jobs": 0}, "'n_jobs' parameter of init_project"),
        ({"budget": 1.5}, "'budget' parameter of init_project"),
        ({"budget": True}, "'budget' parameter of init_project"),
        ({"budget": 0}, "'budget' parameter of init_project"),
        ({"classes": ["a"]}, "two distinct"),
        ({"bins": "7,12"}, "--bins goes with --scoring"),
        ({"strategy": "psychic"}, "unknown strategies"),
        ({"image_size": -1}, "image_size"),
    ],
)
def test_a_wrong_value_is_refused_in_one_line(given, message):
    with pytest.raises(LabelingError, match=message) as info:
        InitSettings.from_keywords(**_defaults(**given))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "budget, checked, count",
    [(30, 30, 30), (200, 200, 60), (200.0, 200, 60), (0.5, 0.5, 30), (1.0, 1.0, 60)],
)
def test_one_budget_check_for_simulate_and_init_project(budget, checked, count):
    assert InitSettings.from_keywords(**_defaults(budget=budget)).rounds.budget == checked
    value = check_budget(budget, "simulate", error=ConfigError)
    assert value == checked and type(value) is type(checked)
    assert budget_count(value, 60) == count


def test_simulate_refuses_the_budgets_init_project_refuses():
    from skal_cxr.simulation._config import resolve_config

    for budget in (1.5, 0, -0.2, True, "10"):
        with pytest.raises(ConfigError, match="'budget' parameter of simulate"):
            resolve_config(budget=budget)
