from pathlib import Path

from skal_cxr.datasets import get_data_home


def test_explicit_argument_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("SKAL_CXR_DATA", str(tmp_path / "env"))
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"


def test_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SKAL_CXR_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"


def test_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SKAL_CXR_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert get_data_home() == tmp_path / "cache" / "skal_cxr"


def test_default_user_cache_and_tilde(monkeypatch, tmp_path):
    monkeypatch.delenv("SKAL_CXR_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == tmp_path / ".cache" / "skal_cxr"
    assert get_data_home("~/cxr") == tmp_path / "cxr"


def test_returns_path_and_creates_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SKAL_CXR_DATA", str(tmp_path / "not_yet"))
    home = get_data_home()
    assert isinstance(home, Path)
    assert not home.exists()
