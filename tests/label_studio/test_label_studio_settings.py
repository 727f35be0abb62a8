"""The backend's settings and its ``skal-cxr label-studio-backend`` command line."""

import json

import pytest

from skal_cxr.cli import build_parser, main
from skal_cxr.exceptions import ConfigError
from skal_cxr.label_studio import load_settings


def test_a_folder_without_settings_file_takes_the_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", "/data/xrays")
    s = load_settings(tmp_path)
    assert s.folder == tmp_path
    assert (s.strategy, s.cold_start, s.retrain_every, s.image_size) == (
        "mean_std",
        "typicality",
        10,
        64,
    )
    assert s.document_root == "/data/xrays" and s.label_studio_url is None
    assert s.round_config().strategy == "mean_std"


def test_a_json_file_names_its_folder_and_overrides_win(tmp_path):
    config = tmp_path / "ls.json"
    config.write_text(json.dumps({"folder": "state", "strategy": "bald", "retrain_every": 3}))
    s = load_settings(config, retrain_every=7, strategy=None)
    assert s.folder == tmp_path / "state"
    assert s.strategy == "bald" and s.retrain_every == 7


@pytest.mark.parametrize(
    "values, message",
    [
        ({"retrain_evry": 3}, "unknown settings ['retrain_evry']"),
        ({"retrain_every": 0}, "retrain_every must be a positive integer"),
        ({"cold_start": "k_center"}, "cold_start must be one of"),
        ({"strategy": "nope"}, "unknown strategies"),
        ({"rounds": {"n_mc_samples": 0}}, "n_mc_samples"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(tmp_path, values, message):
    (tmp_path / "backend.json").write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(tmp_path)


def test_a_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path / "absent.json")


def test_the_command_line_parses_and_reports_bad_settings(tmp_path, capsys):
    args = build_parser().parse_args(
        ["label-studio-backend", str(tmp_path), "--port", "9191", "--retrain-every", "5"]
    )
    assert (args.host, args.port, args.retrain_every) == ("127.0.0.1", 9191, 5)
    (tmp_path / "backend.json").write_text(json.dumps({"image_size": -1}))
    assert main(["label-studio-backend", str(tmp_path)]) == 2
    assert "image_size must be a positive integer" in capsys.readouterr().err
