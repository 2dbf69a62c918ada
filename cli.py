"""The `cairn` command, the one command line: start the web server and the worker, set up,
migrate, show settings, and every domain's commands (`cairn profile add`, `cairn backup run`,
`cairn restore`, `cairn library dupes`, ...), registered at the end of this file.

`cairn run` is what `make run` starts: both processes on this box, stopped together by Ctrl-C.
Under systemd, `cairn web` and `cairn worker` are the two units' commands; each replaces
itself with the real server (gunicorn, huey_consumer) so signals reach it directly.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import psutil

import config
import local_run

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
REMIND_AFTER_SECONDS = 60.0   # the setup link is printed again if still unused by then


def _settings() -> config.Settings:
    try:
        return config.load()
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _child_env(settings: config.Settings) -> dict[str, str]:
    # Children run from the code folder; a relative CAIRN_DATA_DIR must mean the same folder
    # to them as to the shell it was typed in.
    return {**os.environ, "CAIRN_DATA_DIR": str(settings.data_dir)}


def web_command(settings: config.Settings, access_log: bool = True) -> list[str]:
    # One process, many threads: every open page holds a thread for its WebSocket, and the
    # login limits and the live feed's broadcaster live in that one process. The service
    # logs each request to the journal; `cairn run`'s terminal keeps to what a person reads
    # (the address, the setup link, problems) unless the level is DEBUG.
    logs = ["--access-logfile", "-"] if access_log or settings.log_level == "DEBUG" else []
    return [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1",
            "--threads", str(settings.web_threads), "--bind", settings.bind_address,
            "--graceful-timeout", "5", "--chdir", str(ROOT), *logs,
            "--no-control-socket",
            "--log-level", settings.log_level.lower(), "app:create_app()"]


def worker_command(settings: config.Settings) -> list[str]:
    # huey's INFO lines are its own bookkeeping (each task registered at start, a line per
    # periodic task every minute): only DEBUG shows them. Its warnings and errors (a task
    # that raised) always show; Cairn's own news is in the activity feed.
    verbosity = ["--verbose"] if settings.log_level == "DEBUG" else ["--quiet"]
    # --max-delay 0.25: an idle thread looks at the queue four times a second at least (huey's
    # default backs off to 10 s), so a backup's units start together rather than one by one.
    return [str(BIN / "huey_consumer"), "app.huey", "--workers", str(settings.workers),
            "--worker-type", "thread", "--max-delay", "0.25", *verbosity]


# `cairn --help` lists the commands by what they are about.
SECTIONS = (("Backups", ("profile", "backup", "prune", "snapshot", "verify", "restore")),
            ("Media", ("library", "import")),
            ("Running Cairn", ("run", "web", "worker", "migrate", "setup-link", "settings",
                               "reference")))


# The domains' commands, imported only when asked for (importing jobs builds the queue).
DOMAIN_COMMANDS = {
    "profile": ("jobs.commands", "profile_cli"), "backup": ("jobs.commands", "backup_cli"),
    "prune": ("jobs.commands", "prune_command"),
    "snapshot": ("jobs.snapshot_commands", "snapshot_cli"),
    "verify": ("jobs.snapshot_commands", "verify_command"),
    "restore": ("jobs.snapshot_commands", "restore_command"),
    "library": ("jobs.media_commands", "library_cli"),
    "import": ("jobs.media_commands", "import_cli"),
}


class Sections(click.Group):
    """A group whose help lists its commands in SECTIONS, each with its own heading, and
    which loads a domain's commands when one of them is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for _, names in SECTIONS for name in names]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in DOMAIN_COMMANDS:
            return super().get_command(ctx, name)
        module, attribute = DOMAIN_COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attribute)
        except config.ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for title, names in SECTIONS:
            commands = [(name, self.get_command(ctx, name)) for name in names]
            rows = [(name, command.get_short_help_str(limit=formatter.width))
                    for name, command in commands if command is not None]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=Sections)
def main() -> None:
    """Cairn: backups and media imports for a household or small office."""


@main.command()
def web() -> None:
    """Serve the web app (gunicorn, gthread workers)."""
    settings = _settings()
    os.chdir(ROOT)
    os.execve(web_command(settings)[0], web_command(settings), _child_env(settings))


@main.command()
def worker() -> None:
    """Run background jobs (huey_consumer with threads)."""
    settings = _settings()
    os.chdir(ROOT)
    os.execve(worker_command(settings)[0], worker_command(settings), _child_env(settings))


@main.command("migrate")
def migrate_command() -> None:
    """Apply pending database migrations."""
    _prepare(_settings())
    click.echo("Database is up to date.")


@main.command("setup-link")
def setup_link() -> None:
    """Print a fresh one-time link to create the first admin account."""
    settings = _settings()
    link = _prepare(settings)
    if link is None:
        raise click.ClickException("Cairn is already set up: log in with an admin account.")
    click.echo(link)


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the settings table of docs/settings.md.")
def show_settings(markdown: bool) -> None:
    """Show every setting with its value (or print the documentation table)."""
    if markdown:
        click.echo(settings_table())
        return
    settings = _settings()
    for setting in config.SETTINGS:
        value = getattr(settings, setting.attr)
        if setting.name == "CAIRN_SECRET_KEY":
            value = "(set)" if value else f"(kept in {settings.data_dir / config.SECRET_KEY_FILE})"
        elif setting.name == "CAIRN_BIND":
            value = settings.bind_address
        click.echo(f"{setting.name}={value}")


@main.command()
def reference() -> None:
    """Print docs/cli.md: every command and option, from the commands themselves."""
    from cli_reference import reference as write_reference

    click.echo(write_reference(main, SECTIONS), nl=False)


def settings_table() -> str:
    rows = ["| Setting | Type | Default | What it does |", "|---|---|---|---|"]
    for s in config.SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        rows.append(f"| `{s.name}` | {s.type} | {default} | {s.help} |")
    return "\n".join(rows)


@main.command()
def run() -> None:
    """Start the web server and the worker together; Ctrl-C stops both. A worker that dies
    is started again (waiting longer each time it dies soon after starting); the web stays.

    As root, both run as the system user `cairn` (made if missing, as the installer does):
    the web with no rights at all, the worker with exactly the capabilities the installed
    service has, so that the web facing the network is never root."""
    settings = _settings()
    link = _prepare(settings)
    try:
        web_as, worker_as = local_run.identities(settings.data_dir, ROOT, sys.executable)
    except local_run.Refused as refused:
        raise click.ClickException(str(refused)) from None
    children = [_spawn("web", web_as + web_command(settings, access_log=False), settings),
                _spawn("worker", worker_as + worker_command(settings), settings)]
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    try:
        if not _wait_until_listening(settings, children, stopping):
            raise click.ClickException("The web server did not start; see the messages above.")
        _print_banner(settings, link)
        _watch(children, stopping, lambda: _spawn("worker", worker_as + worker_command(settings),
                                                  settings), _reminder(link))
    finally:
        _stop(children)
    crashed = [(name, p.returncode) for name, p in children if p.returncode not in (0, -2, -15)]
    if not stopping or crashed:
        names = ", ".join(f"{name} (exit {code})" for name, code in crashed) or "a process"
        raise click.ClickException(f"Cairn stopped because {names} ended unexpectedly.")
    click.echo("Cairn stopped.")


def _reminder(link: str | None, after: float = REMIND_AFTER_SECONDS):
    """Called while Cairn runs: prints the setup link once more if, `after` seconds on, it
    is still unused (its lines may have scrolled away among the first messages)."""
    due = time.monotonic() + after

    def remind(now: float) -> bool:
        nonlocal due
        if link is None or now < due:
            return False
        due = float("inf")
        if not _nobody_can_log_in():
            return False
        click.echo(f"\nNobody has used the setup link yet. Create the first admin account "
                   f"with it (valid for 1 hour from the start):\n{link}\n")
        return True

    return remind


def _nobody_can_log_in() -> bool:
    from models import User, db
    with db.connection_context():
        return not User.exists_any()


def _watch(children: list, stopping: list[int], respawn, remind=lambda now: False) -> None:
    """Until Ctrl-C or the web ends: a worker that ends is started again, after a wait that
    doubles while it keeps dying within a minute of starting (1 s, 2 s ... 60 s)."""
    backoff = local_run.Backoff()
    while not stopping and children[0][1].poll() is None:
        remind(time.monotonic())
        worker = children[1][1]
        if worker.poll() is not None:
            delay = backoff.next(time.monotonic())
            click.echo(f"The worker stopped (exit {worker.returncode}); the web stays up. "
                       f"Starting the worker again in {delay:g} s.", err=True)
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if stopping:
                return
            children[1] = respawn()
            backoff.started(time.monotonic())
            click.echo("The worker is running again.", err=True)
        time.sleep(0.2)


def _prepare(settings: config.Settings) -> str | None:
    """Data dir, secret key and schema in place; a setup link if nobody can log in yet."""
    from models import SetupToken, User, db, open_database
    from models.migrate import migrate

    config.prepare_data_dir(settings)
    config.secret_key(settings)
    migrate(open_database(settings.database_url))
    with db.connection_context():
        if User.exists_any():
            return None
        return f"{base_url(settings)}/setup?token={SetupToken.issue()}"


def _spawn(name: str, command: list[str], settings: config.Settings) -> tuple[str, subprocess.Popen]:
    # Own process group: Ctrl-C reaches only `cairn run`, which stops the children in order
    # (a second, terminal-sent SIGINT would make huey abandon running jobs).
    return name, subprocess.Popen(command, cwd=ROOT, env=_child_env(settings),
                                  start_new_session=True)


def _wait_until_listening(settings, children, stopping) -> bool:
    host = settings.bind_host
    if ipaddress.ip_address(host if _is_ip(host) else "127.0.0.1").is_unspecified:
        host = "127.0.0.1" if ":" not in host else "::1"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and not stopping:
        if any(p.poll() is not None for _, p in children):
            return False
        try:
            with socket.create_connection((host, settings.bind_port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop(children: list[tuple[str, subprocess.Popen]]) -> None:
    # SIGINT is huey's graceful stop (running jobs finish) and gunicorn's quick one.
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"{name} did not stop in {STOP_TIMEOUT:.0f} s; killing it.", err=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def base_url(settings: config.Settings) -> str:
    """The address to open in a browser; for "all addresses", this box's LAN address."""
    host = settings.bind_host
    if _is_ip(host) and ipaddress.ip_address(host).is_unspecified:
        host = _lan_address() or socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.bind_port}"


def _lan_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET:
                ip = ipaddress.ip_address(address.address)
                if ip.is_private and not ip.is_loopback:
                    return address.address
    return None


def _print_banner(settings: config.Settings, link: str | None) -> None:
    queue = settings.redis_url or settings.queue_path
    click.echo(f"\nCairn is running at {base_url(settings)}")
    click.echo(f"  data:   {settings.data_dir}")
    click.echo(f"  worker: {settings.workers} threads, queue {queue}")
    if link:
        click.echo("\nCreate the first admin account with this one-time link (valid for 1 hour):")
        click.echo(link)
    click.echo("\nPress Ctrl-C to stop.\n")


if __name__ == "__main__":
    main()

