"""`cairn run`'s terminal: the address and the setup link, not the servers' bookkeeping."""

import time

import config
from cli import _reminder, web_command, worker_command


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
