"""The systemd units and the install script name things that exist and hold the right rights."""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huey import Huey

import app
import config
from cli import main, web_command, worker_command

ROOT = Path(__file__).resolve().parents[2]
UNITS = {name: ROOT / "deploy" / f"cairn-{name}.service" for name in ("web", "worker")}


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("name", UNITS)
def test_every_command_of_a_unit_is_a_cairn_command(name):
    unit = directives(UNITS[name])
    for line in unit["ExecStart"] + unit.get("ExecStartPre", []):
        program, command = shlex.split(line)
        assert program == "/opt/cairn/.venv/bin/cairn"
        assert command in main.commands


def test_the_units_pass_systemd_verification(tmp_path):
    # Point them at this checkout, where .venv/bin/cairn exists, and let systemd check them.
    for unit in UNITS.values():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/cairn", str(ROOT)))
    result = subprocess.run([shutil.which("systemd-analyze"), "verify",
                             *(str(tmp_path / u.name) for u in UNITS.values())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ignoring" not in result.stderr, result.stderr


def test_both_run_as_cairn_with_the_state_directory():
    for unit in UNITS.values():
        d = directives(unit)
        assert d["User"] == ["cairn"] and d["StateDirectory"] == ["cairn"]
        assert d["Environment"] == ["CAIRN_DATA_DIR=/var/lib/cairn"]


def test_the_web_faces_the_network_without_privileges():
    d = directives(UNITS["web"])
    assert d["CapabilityBoundingSet"] == [""]
    assert d["ProtectHome"] == ["yes"] and d["NoNewPrivileges"] == ["yes"]
    assert "AmbientCapabilities" not in d


def test_the_worker_has_exactly_the_rights_a_backup_needs_and_stops_gracefully():
    d = directives(UNITS["worker"])
    rights = {"CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_FOWNER",
              "CAP_SYS_ADMIN"}
    assert set(d["AmbientCapabilities"][0].split()) == rights
    assert set(d["CapabilityBoundingSet"][0].split()) == rights
    assert d["KillSignal"] == ["SIGINT"]


def test_cairn_worker_runs_huey_consumer_on_app_huey_with_threads():
    settings = config.load({"CAIRN_WORKERS": "6"})
    command = worker_command(settings)
    assert Path(command[0]) == Path(sys.executable).parent / "huey_consumer"
    assert Path(command[0]).exists()
    assert command[1:6] == ["app.huey", "--workers", "6", "--worker-type", "thread"]
    assert isinstance(app.huey, Huey)


def test_cairn_web_runs_gunicorn_gthread_on_the_app_factory():
    settings = config.load({"CAIRN_BIND": "0.0.0.0:9000", "CAIRN_WEB_THREADS": "64"})
    command = web_command(settings)
    assert Path(command[0]).name == "gunicorn" and Path(command[0]).exists()
    assert command[command.index("--worker-class") + 1] == "gthread"
    assert command[command.index("--threads") + 1] == "64"
    assert command[command.index("--bind") + 1] == "0.0.0.0:9000"
    module, factory = command[-1].removesuffix("()").split(":")
    assert module == "app" and callable(getattr(app, factory))


def test_the_install_script_installs_both_units_and_the_admin_command():
    script = (ROOT / "deploy" / "install.sh").read_text()
    assert subprocess.run(["sh", "-n", str(ROOT / "deploy" / "install.sh")]).returncode == 0
    assert "cairn-web.service" in script and "cairn-worker.service" in script
    assert "/usr/local/bin/cairn" in script and "useradd --system" in script
    assert subprocess.run(["sh", "-n", str(ROOT / "deploy" / "cairn-admin.sh")]).returncode == 0


@pytest.mark.parametrize("name", UNITS)
def test_systemd_starts_a_process_again_that_died(name):
    # on-failure covers a crash, a non-zero exit and a kill by a signal (the OOM killer).
    d = directives(UNITS[name])
    assert d["Restart"] in (["on-failure"], ["always"]) and float(d["RestartSec"][0]) > 0


def test_a_worker_dying_again_and_again_waits_longer_each_time_then_starts_afresh():
    from local_run import Backoff
    backoff = Backoff()
    waits = []
    for now in range(0, 70, 10):   # dies 10 s after each start
        waits.append(backoff.next(float(now)))
        backoff.started(float(now))
    assert waits == [1, 2, 4, 8, 16, 32, 60]
    backoff.started(100.0)
    assert backoff.next(300.0) == 1   # it had run for minutes: the first wait again
