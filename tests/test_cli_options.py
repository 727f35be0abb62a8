"""The options declared once (``skal_cxr._options``) reach what they name, and only there."""

import argparse
import ast
import re
from pathlib import Path

import pytest

import skal_cxr
from skal_cxr import _cli_commands
from skal_cxr._cli_options import simulate_options
from skal_cxr._cli_types import _budget, _float_list, _seeds, _str_list
from skal_cxr._options import Option, add_options, collect, lookup
from skal_cxr.cli import build_parser, main
from skal_cxr.labeling._cli_options import _pool_size, init_options

#: What a sample value on the command line becomes where it goes, for the options that
#: turn it into something else (the others arrive as parsed).
SPECIAL = {
    "--class-weight": ("none", None),
    "--backbone": ("resnet18", "resnet18"),
    "--quiet": (None, False),
    "--no-baseline": (None, False),
    "--warm-start": (None, True),
    "--verify-cache": (None, True),
    "--overwrite": (None, True),
    "--data": ("phantoms", "phantoms"),
    "--budget": ("0.25", 0.25),
    "--lease-minutes": ("2", 120.0),
    "--show-prediction": (None, True),
    "--hash-patient-ids": (None, True),
    "--seeds": ("3", 3),
}
SAMPLES = {int: ("7", 7), float: ("0.5", 0.5), _str_list: ("a,b", ["a", "b"])}
SAMPLES |= {_float_list: ("1,2", [1.0, 2.0]), _seeds: ("1,4", [1, 4]), _budget: ("40", 40)}
SAMPLES |= {_pool_size: ("all", None)}


def _sample(option):
    """``(argv, expected)``: the option given a sample value, and what should arrive."""
    flag = option.flags[0]
    if flag in SPECIAL:
        text, expected = SPECIAL[flag]
    elif option.choices is not None:
        text = expected = list(option.choices)[-1]
    elif option.type in SAMPLES:
        text, expected = SAMPLES[option.type]
    else:
        text = expected = "given-value"
    return [flag] if text is None else [flag, text], expected


def _declared(options):
    return [o for o in options if o.to is not None and not o.positional]


@pytest.mark.parametrize("option", _declared(simulate_options()), ids=lambda o: o.flags[0])
def test_every_simulate_option_reaches_its_configuration_path(option, tmp_path, monkeypatch):
    """``simulate --opt VALUE`` calls ``simulate`` with VALUE at the path the option names."""
    import skal_cxr.datasets
    import skal_cxr.simulation

    calls = {}

    def simulate(*a, **k):
        calls.update(k, a=a)
        return argparse.Namespace(results_dir=tmp_path)

    monkeypatch.setattr(skal_cxr.simulation, "simulate", simulate)
    monkeypatch.setattr(_cli_commands, "_report_and_print", lambda *a: None)
    monkeypatch.setattr(skal_cxr.datasets, "image_limits", _limits(calls))
    argv, expected = _sample(option)
    path = option.to.split(".")
    if option.flags[0] == "--pretrained":
        weights = tmp_path / "w.pt"
        weights.write_bytes(b"")
        argv, expected = ["--pretrained", str(weights), "--backbone", "resnet18"], str(weights)
    if path[:2] == ["data", "folder"] and path[2] not in ("csv", "image_dir"):
        argv += ["--csv", "l.csv", "--image-dir", "img"]
    elif path[:2] == ["data", "folder"]:
        argv += ["--image-dir" if path[2] == "csv" else "--csv", "other"]
    if path[0] == "data" and len(path) == 3:
        path = ["data", path[2]]  # the source's keys are the data spec's
    assert main(["simulate", *argv]) == 0
    if option.to == "output_dir":
        assert calls["a"] == (expected,)
    else:
        assert lookup(calls, ".".join(path)) == expected


def _limits(calls):
    import contextlib

    @contextlib.contextmanager
    def limits(max_pixels=None):
        calls["max_pixels"] = max_pixels
        yield

    return limits


class _Project:
    path, classes = Path("p"), ["a", "b"]

    def n_images(self):
        return 0


@pytest.mark.parametrize("option", _declared(init_options()), ids=lambda o: o.flags[0])
def test_every_init_option_reaches_its_keyword(option, tmp_path, monkeypatch):
    """``label init --opt VALUE`` calls ``init_project`` (or the PACS's) with that keyword."""
    import skal_cxr.labeling

    calls = {}

    def fake(**kwargs):
        calls.update(kwargs)
        return _Project()

    monkeypatch.setattr(skal_cxr.labeling, "init_project", fake)
    monkeypatch.setattr(skal_cxr.labeling, "init_dicomweb_project", fake)
    argv, expected = _sample(option)
    source, _, keyword = option.to.rpartition(".")
    if option.flags[0] in ("--image-dir", "--dicomweb"):
        argv = [option.flags[0], "given-value"]
    elif source == "pacs":
        argv += ["--dicomweb", "http://pacs"]
    else:
        argv += ["--image-dir", "img"]
    if option.flags[0] != "--classes":
        argv += ["--classes", "a,b"]
    assert main(["label", "init", str(tmp_path / "p"), *argv]) == 0
    assert calls[keyword] == expected


def test_a_given_option_changes_only_its_own_keyword(tmp_path, monkeypatch):
    import skal_cxr.labeling

    seen = []
    monkeypatch.setattr(skal_cxr.labeling, "init_project", lambda **k: seen.append(k) or _Project())
    base = ["label", "init", str(tmp_path / "p"), "--image-dir", "i", "--classes", "a,b"]
    assert main(base) == 0 and main([*base, "--labels-per-image", "3"]) == 0
    changed = {k for k in seen[0] if seen[0][k] != seen[1][k]}
    assert changed == {"labels_per_image"} and seen[0]["labels_per_image"] == 1


def _subparser(parser, *names):
    for name in names:
        parser = parser._subparsers._group_actions[0].choices[name]
    return parser


@pytest.mark.parametrize(
    "command, options",
    [(("simulate",), simulate_options), (("label", "init"), init_options)],
    ids=["simulate", "label init"],
)
def test_help_lists_each_declared_option_once(command, options, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = _subparser(build_parser(), *command).format_help()
    listed = re.findall(r"^  (-[-\w]+)", text, flags=re.MULTILINE)
    declared = [o.flags[0] for o in options() if not o.positional and o.help != argparse.SUPPRESS]
    assert sorted(listed) == sorted(["-h", *declared])  # each once, none undeclared


def test_no_argument_is_added_outside_the_generator():
    """Every ``add_argument`` call of the package is in ``_options.add_options``."""
    root = Path(skal_cxr.__file__).parent
    calls = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("add_argument", "add_mutually_exclusive_group")
            ):
                calls.append(f"{path.relative_to(root)}:{node.lineno}")
    assert calls and all(c.startswith("_options.py:") for c in calls), calls


def test_defaults_are_read_at_the_declared_path():
    from argparse import ArgumentParser

    options = [
        Option(("--lr",), to="estimator.lr", type=float, help="rate ({default:g})"),
        Option(
            ("--minutes",), to="lease", type=float, show=lambda s: s / 60, convert=lambda m: 60 * m
        ),
    ]
    defaults = {"estimator": {"lr": 0.003}, "lease": 600}
    parser = add_options(ArgumentParser(), options, defaults, fill_defaults=True)
    assert "rate (0.003)" in parser.format_help()
    args = parser.parse_args([])
    assert (args.lr, args.minutes) == (0.003, 10)
    assert collect(args, options) == {"estimator": {"lr": 0.003}, "lease": 600}
    args = add_options(ArgumentParser(), options, defaults).parse_args(["--minutes", "2"])
    assert collect(args, options) == {"lease": 120}  # --lr not given: left to the defaults


def test_every_declared_path_names_a_real_setting():
    """A path the declarations name exists in the configuration or the function's signature."""
    import inspect

    from skal_cxr import MCDropoutCNN
    from skal_cxr._cli_options import simulate_defaults
    from skal_cxr.datasets import image_limits
    from skal_cxr.labeling import init_dicomweb_project, init_project
    from skal_cxr.networks import CXRNet
    from skal_cxr.simulation import simulate

    defaults, run = simulate_defaults(), inspect.signature(simulate).parameters
    params = MCDropoutCNN().get_params()
    for option in _declared(simulate_options()):
        path = option.to.split(".")
        if path[0] == "estimator":  # the CNN's parameters, module__ those of its network
            network = inspect.signature(CXRNet).parameters
            name = path[1].removeprefix("module__")
            assert name in (network if path[1].startswith("module__") else params), option
        elif option.to == "data.source":
            continue  # chooses the source (a name or a path), see _data_spec
        elif option.to == "max_pixels":
            assert "max_pixels" in inspect.signature(image_limits).parameters
        elif len(path) > 1:
            lookup(defaults, option.to)  # KeyError: not a setting of the configuration
        else:
            assert path[0] in run, option
    keywords = {**inspect.signature(init_project).parameters}
    keywords |= inspect.signature(init_dicomweb_project).parameters
    for option in _declared(init_options()):
        assert option.to.rpartition(".")[2] in keywords, option


def test_simulate_takes_a_fractional_budget():
    from skal_cxr.simulation._config import resolve_config

    args = build_parser().parse_args(["simulate", "--budget", "0.2"])
    budget = collect(args, simulate_options())["budget"]
    assert budget == 0.2 and resolve_config(budget=budget)["budget"] == 0.2


def test_an_option_without_help_keeps_its_actions_own():
    assert "show program's version number and exit" in build_parser().format_help()
