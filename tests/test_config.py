import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_run_cairn_from_var_on_localhost(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = config.load({})
    assert settings.data_dir == tmp_path / "var"
    assert settings.bind_address == "127.0.0.1:8888"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'cairn.db'}"
    assert settings.redis_url == ""
    assert settings.workers == 4
    assert settings.cookie_secure is False
    assert settings.log_level == "INFO"


def test_values_are_parsed_to_their_types():
    settings = config.load({
        "CAIRN_DATA_DIR": "/srv/cairn", "CAIRN_BIND": "[::]:9000",
        "CAIRN_DATABASE_URL": "postgresql://cairn@db/cairn", "CAIRN_REDIS_URL": "redis://r:6379/1",
        "CAIRN_WORKERS": " 8 ", "CAIRN_COOKIE_SECURE": "yes", "CAIRN_LOG_LEVEL": "debug",
    })
    assert settings.data_dir == Path("/srv/cairn")
    assert settings.bind == ("::", 9000)
    assert settings.bind_address == "[::]:9000"
    assert settings.database_url == "postgresql://cairn@db/cairn"
    assert settings.workers == 8
    assert settings.cookie_secure is True
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("name, value, says", [
    ("CAIRN_WORKERS", "many", "whole number from 1 to 64"),
    ("CAIRN_WORKERS", "0", "whole number from 1 to 64"),
    ("CAIRN_BIND", "8888", "HOST:PORT"),
    ("CAIRN_BIND", "0.0.0.0:99999", "1 to 65535"),
    ("CAIRN_DATABASE_URL", "mysql://x/y", "sqlite:/// or postgresql://"),
    ("CAIRN_DATABASE_URL", "sqlite://cairn.db", "three slashes"),
    ("CAIRN_REDIS_URL", "localhost:6379", "redis://"),
    ("CAIRN_SECRET_KEY", "short", "at least 32 characters"),
    ("CAIRN_COOKIE_SECURE", "maybe", "true or false"),
    ("CAIRN_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("CAIRN_QUEUE_NAME", "a b", "letters, digits"),
    ("CAIRN_DATA_DIR", "", "folder path"),
    ("CAIRN_SOURCE_ROOTS", "home/ada", "absolute folders"),
    ("CAIRN_SOURCE_ROOTS", " : ", "at least one folder"),
])
def test_a_malformed_setting_stops_the_start_naming_it(name, value, says):
    with pytest.raises(config.ConfigError) as error:
        config.load({name: value})
    assert f"{name}: " in str(error.value)
    assert says in str(error.value)


def test_source_roots_are_home_only_unless_told_otherwise(monkeypatch):
    # Not the home of Cairn's own user: installed, that is the data dir (/var/lib/cairn);
    # under `make run` as root, /root.
    monkeypatch.setenv("HOME", "/var/lib/cairn")
    assert config.load({}).source_roots == ("/home",)
    roots = config.load({"CAIRN_SOURCE_ROOTS": "/srv/photos/:~/shared:/srv/photos"}).source_roots
    assert roots == ("/srv/photos", "/var/lib/cairn/shared")


def test_restores_go_under_the_source_roots_unless_their_own_are_set():
    assert config.load({"CAIRN_SOURCE_ROOTS": "/srv"}).restore_folders == ("/srv",)
    chosen = config.load({"CAIRN_SOURCE_ROOTS": "/srv", "CAIRN_RESTORE_ROOTS": "/srv/back:/tmp"})
    assert chosen.restore_folders == ("/srv/back", "/tmp")
    with pytest.raises(config.ConfigError, match="CAIRN_RESTORE_ROOTS"):
        config.load({"CAIRN_RESTORE_ROOTS": "relative"})


def test_every_malformed_setting_is_reported_at_once():
    with pytest.raises(config.ConfigError) as error:
        config.load({"CAIRN_WORKERS": "x", "CAIRN_BIND": "y"})
    assert "CAIRN_WORKERS" in str(error.value) and "CAIRN_BIND" in str(error.value)


def test_a_misspelt_setting_is_an_error_with_a_suggestion():
    with pytest.raises(config.ConfigError, match=r"CAIRN_WORKER: not a Cairn setting \(did you mean "
                                                 r"CAIRN_WORKERS\?\)"):
        config.load({"CAIRN_WORKER": "8"})


def test_the_secret_key_is_generated_once_and_kept_private(tmp_path):
    settings = config.load({"CAIRN_DATA_DIR": str(tmp_path / "data")})
    key = config.secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert config.secret_key(settings) == key


def test_a_secret_key_readable_by_others_is_made_private(tmp_path):
    settings = config.load({"CAIRN_DATA_DIR": str(tmp_path)})
    config.secret_key(settings)
    (tmp_path / "secret_key").chmod(0o644)
    config.secret_key(settings)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_processes_starting_together_agree_on_one_secret_key(tmp_path):
    script = ("import config, sys; s = config.load(); "
              "print(config.secret_key(s))")
    env = {**os.environ, "CAIRN_DATA_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(keys) == 1
    assert keys == {(tmp_path / "secret_key").read_text().strip()}
    assert not list(tmp_path.glob(".secret_key.*"))


def test_a_configured_secret_key_is_used_and_nothing_is_written(tmp_path):
    settings = config.load({"CAIRN_DATA_DIR": str(tmp_path / "d"), "CAIRN_SECRET_KEY": "k" * 40})
    assert config.secret_key(settings) == "k" * 40
    assert not (tmp_path / "d").exists()


def test_every_setting_is_documented_in_the_settings_page():
    readme = (ROOT / "docs" / "settings.md").read_text()
    for setting in config.SETTINGS:
        default = f"`{setting.default}`" if setting.default else "(empty)"
        assert f"| `{setting.name}` | {setting.type} | {default} |" in readme, setting.name


def test_only_config_reads_the_environment():
    offenders = []
    for path in ROOT.glob("**/*.py"):
        if {"tests", ".venv"} & set(path.relative_to(ROOT).parts) or path.name == "config.py":
            continue
        if "os.environ" in path.read_text() and path.name != "cli.py":
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
