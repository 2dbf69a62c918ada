"""`cairn run`'s terminal: the address and the setup link, not the servers' bookkeeping."""

import time

import config
from cli import _reminder, web_command, worker_command
from tests.helpers.cli import cairn


def test_at_the_default_level_neither_server_logs_its_bookkeeping():
    settings = config.load({"CAIRN_DATA_DIR": "/srv/cairn"})
    assert "--access-logfile" not in web_command(settings, access_log=False)
    assert "--access-logfile" in web_command(settings)          # the service's journal
    assert "--quiet" in worker_command(settings)
    debug = config.load({"CAIRN_DATA_DIR": "/srv/cairn", "CAIRN_LOG_LEVEL": "debug"})
    assert "--access-logfile" in web_command(debug, access_log=False)
    assert "--verbose" in worker_command(debug)


def test_an_unused_setup_link_is_printed_again_once_after_a_minute(app, capsys):
    remind = _reminder("http://127.0.0.1:8888/setup?token=abc", after=60)
    start = time.monotonic()
    assert not remind(start + 30)
    assert remind(start + 61)
    assert "http://127.0.0.1:8888/setup?token=abc" in capsys.readouterr().out
    assert not remind(start + 600)                               # once is enough


def test_no_reminder_once_someone_has_an_account(app, ada, capsys):
    remind = _reminder("http://127.0.0.1:8888/setup?token=abc", after=0)
    assert not remind(time.monotonic() + 1)
    assert capsys.readouterr().out == ""
    assert not _reminder(None, after=0)(time.monotonic() + 1)


def test_cairn_is_the_one_command_and_its_help_lists_each_domain():
    done = cairn("--help", check=True)
    headings = [line for line in done.stdout.splitlines() if line.endswith(":")]
    assert headings == ["Options:", "Backups:", "Media:", "Running Cairn:"]
    for command in ("profile", "backup", "prune", "snapshot", "verify", "restore", "library",
                    "import", "run", "web", "worker", "migrate", "setup-link", "settings"):
        assert f"  {command} " in done.stdout, command
    assert "Usage: cairn profile add" in cairn("profile", "add", "--help", check=True).stdout


def test_a_bad_setting_stops_a_domain_command_with_its_name_not_a_traceback():
    env = {"PATH": "/usr/bin:/bin", "CAIRN_WORKERS": "many"}
    done = cairn("profile", "list", env=env)
    assert done.returncode == 1
    assert "CAIRN_WORKERS" in done.stderr and "Traceback" not in done.stderr
