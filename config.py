"""Every Cairn setting, read from the environment in this one place.

Each setting has a type, a default and help text. `load()` parses them all and raises
`ConfigError` naming every malformed setting, so a bad value stops the start instead of
surfacing later as a confusing failure. The README's settings table is checked against
`SETTINGS` by a test.
"""

from __future__ import annotations

import difflib
import logging
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "CAIRN_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_LENGTH = 32

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """One or more settings are malformed; the message names each of them."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: str
    default: str
    help: str
    parse: Callable[[str], Any]

    @property
    def attr(self) -> str:
        return self.name.removeprefix(PREFIX).lower()


def _path(value: str) -> Path:
    if not value:
        raise ValueError("expected a folder path, got an empty value")
    return Path(value).expanduser().resolve()


def _folders(value: str) -> tuple[str, ...]:
    """Absolute folders separated by ':'; '~' is the home of the user Cairn runs as."""
    folders: list[str] = []
    for part in (p.strip() for p in value.split(":")):
        if not part:
            continue
        if part == "~" or part.startswith("~/"):
            part = str(Path.home()) + part[1:]
        if not part.startswith("/"):
            raise ValueError(f"expected absolute folders separated by ':', got {part!r}")
        normal = os.path.normpath(part)
        if normal not in folders:
            folders.append(normal)
    if not folders:
        raise ValueError("expected at least one folder")
    return tuple(folders)


def _between(low: float, high: float, convert: Callable[[str], float] = int) -> Callable[[str], float]:
    """A parser for a number from `low` to `high`: whole numbers unless `convert` is float."""
    noun = "a whole number" if convert is int else "a number"

    def show(number: float) -> str:
        return str(number) if convert is int else f"{number:g}"

    def parse(value: str) -> float:
        try:
            number = convert(value)
        except ValueError:
            raise ValueError(f"expected {noun} from {show(low)} to {show(high)}, "
                             f"got {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"expected {noun} from {show(low)} to {show(high)}, got {show(number)}")
        return number

    return parse


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8888, got {value!r}")
    return host, _between(1, 65535)(port)


def _database_url(value: str) -> str:
    if not value:
        return ""  # resolved to a SQLite file in the data dir by load()
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
    if scheme == "sqlite" and not value.startswith("sqlite:///"):
        raise ValueError("a SQLite URL needs three slashes: sqlite:///relative or sqlite:////absolute")
    return value


def _redis_url(value: str) -> str:
    if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {value!r}")
    return value


def _http_url(value: str) -> str:
    if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _api_key(value: str) -> str:
    if value and (len(value) > 1000 or not all(c.isalnum() or c in "-_." for c in value)):
        raise ValueError("expected the key as TMDB shows it: letters, digits, '-', '_' and '.'")
    return value


def _queue_name(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value) or len(value) > 64:
        raise ValueError("expected up to 64 letters, digits, '-', '_' or '.'")
    return value


def _secret_key(value: str) -> str:
    if value and len(value) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(f"expected at least {MIN_SECRET_KEY_LENGTH} characters")
    return value


def _size(value: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "")
    try:
        size = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"expected a size such as 512K, 256M or 2G, got {value!r}") from None
    if size < 1:
        raise ValueError(f"expected a size of at least 1 byte, got {value!r}")
    return int(size)


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("CAIRN_DATA_DIR", "path", "./var",
            "Folder for the database, the job queue and the secret key. "
            "Relative paths are taken from the folder Cairn starts in.", _path),
    Setting("CAIRN_BIND", "host:port", "127.0.0.1:8888",
            "Address and port the web server listens on. Use 0.0.0.0:8888 to serve the LAN.", _bind),
    Setting("CAIRN_DATABASE_URL", "url", "",
            "Database. Empty means a SQLite file `cairn.db` in the data dir; "
            "`postgresql://user:pass@host/db` uses PostgreSQL.", _database_url),
    Setting("CAIRN_REDIS_URL", "url", "",
            "Job queue. Empty means a SQLite queue `queue.db` in the data dir; "
            "`redis://host:6379/0` uses Redis (needed to run workers on several boxes).", _redis_url),
    Setting("CAIRN_QUEUE_NAME", "name", "cairn",
            "Name of the job queue; boxes sharing a Redis server use different names "
            "for work bound to their own hardware.", _queue_name),
    Setting("CAIRN_SECRET_KEY", "string", "",
            f"Key that signs sessions and CSRF tokens (at least {MIN_SECRET_KEY_LENGTH} characters). "
            "Empty means one is generated on first start and kept in `<data dir>/secret_key` (mode 600).",
            _secret_key),
    Setting("CAIRN_WORKERS", "integer", "4",
            "Worker threads that run jobs (backups, scans, imports) in parallel.", _between(1, 64)),
    Setting("CAIRN_WEB_THREADS", "integer", "128",
            "Web server threads. Every open browser tab holds one for its live feed.",
            _between(4, 1000)),
    Setting("CAIRN_COOKIE_SECURE", "boolean", "false",
            "Send the session cookie over HTTPS only. Turn on when Cairn is served over HTTPS.", _bool),
    Setting("CAIRN_TRUSTED_PROXIES", "integer", "0",
            "Number of reverse proxies in front of Cairn whose X-Forwarded-* headers are trusted "
            "(for the client address in the audit log and login limits).", _between(0, 5)),
    Setting("CAIRN_LOG_LEVEL", "level", "INFO",
            f"Logging level: {', '.join(LOG_LEVELS)}.", _log_level),
    Setting("CAIRN_EVENT_RETENTION_DAYS", "integer", "90",
            "Days the activity feed keeps events, and Cairn sent notifications and acknowledged "
            "alerts, before they are pruned.", _between(1, 3650)),
    Setting("CAIRN_RETRY_DELAY", "seconds", "30",
            "Wait before a failed backup unit's first retry; each further retry waits twice as "
            "long as the one before.", _between(0.1, 86400, float)),
    Setting("CAIRN_MIN_UNIT_SIZE", "size", "256M",
            "Smallest part a backup is split into for parallel rsync processes (each file "
            "counts as 64K besides its size). Smaller parts spread work more evenly, at a "
            "little cost per part.", _size),
    Setting("CAIRN_SOURCE_ROOTS", "folders", "/home",
            "Folders (separated by ':') under which the web pages let people choose what to "
            "back up; '~' is the home of the user Cairn runs as. The command line is not "
            "limited.", _folders),
    Setting("CAIRN_RESTORE_ROOTS", "folders", "",
            "Folders (separated by ':') into which restores asked for on the web may write, "
            "besides each file's own original place; empty means the same as "
            "CAIRN_SOURCE_ROOTS. The worker refuses every other place, and Cairn's data dir "
            "always. The command line (root or the worker's user) is not limited.",
            lambda value: _folders(value) if value else ()),
    Setting("CAIRN_THROTTLE_LOAD", "number", "3",
            "Load average per CPU core above which backups run fewer rsync processes at once.",
            _between(0.1, 1000, float)),
    Setting("CAIRN_THROTTLE_MEMORY", "percent", "90",
            "Memory use above which backups run fewer rsync processes at once.",
            _between(1, 100, float)),
    Setting("CAIRN_THROTTLE_IOWAIT", "percent", "60",
            "Share of CPU time spent waiting for disks above which backups run fewer rsync "
            "processes at once.", _between(1, 100, float)),
    Setting("CAIRN_CATCH_UP_HOURS", "hours", "24",
            "A scheduled backup missed while the box or its worker was off runs once when the "
            "worker is back, if it was due less than this many hours ago; 0 never catches up.",
            _between(0, 8760, float)),
    Setting("CAIRN_DRIVE_ROOT", "path", "/media/cairn",
            "Folder under which Cairn mounts adopted drives, each at `<folder>/<filesystem UUID>`; "
            "a profile backs up to a drive by a destination inside its folder.", _path),
    Setting("CAIRN_DRIVE_AWAY_DAYS", "integer", "14",
            "Days an adopted drive may stay unplugged before the dashboard warns about it.",
            _between(1, 3650)),
    Setting("CAIRN_TMDB_API_KEY", "string", "",
            "A TMDB API key (v3) or read access token (v4) for the media import's canonical "
            "titles and years; empty imports by the parsed name alone.", _api_key),
    Setting("CAIRN_TMDB_URL", "url", "https://api.themoviedb.org/3",
            "Where TMDB's API is (change it only to go through a proxy).", _http_url),
)


# What a household changes (on the Settings page, kept in the database), unlike what only an
# installer sets (data dir, address, database, queue): the environment still wins where it
# sets one of these.
HOUSEHOLD = ("CAIRN_SOURCE_ROOTS", "CAIRN_RESTORE_ROOTS", "CAIRN_EVENT_RETENTION_DAYS",
             "CAIRN_CATCH_UP_HOURS", "CAIRN_DRIVE_AWAY_DAYS", "CAIRN_THROTTLE_LOAD",
             "CAIRN_THROTTLE_MEMORY", "CAIRN_THROTTLE_IOWAIT", "CAIRN_TMDB_API_KEY")
# Never shown back, not even masked in part.
SECRETS = ("CAIRN_SECRET_KEY", "CAIRN_TMDB_API_KEY")


def setting(name: str) -> Setting:
    return next(s for s in SETTINGS if s.name == name)


def parse_household(name: str, raw: str) -> Any:
    """A household value as typed on the page, parsed as the environment's would be (raises
    ValueError with the reason)."""
    if name not in HOUSEHOLD:
        raise ValueError(f"{name} is set only by whoever installs Cairn")
    return setting(name).parse(raw.strip())


def overlay(settings: Settings, stored: Mapping[str, str]) -> Settings:
    """`settings` with the household's stored values, where the environment sets none."""
    values = {}
    for name, raw in stored.items():
        if name not in HOUSEHOLD or name in settings.from_environment:
            continue
        try:
            values[setting(name).attr] = parse_household(name, raw)
        except ValueError as exc:   # checked when saved; a newer rule may refuse an old value
            log.warning("the stored %s is not used: %s", name, exc)
    return replace(settings, **values) if values else settings


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    bind: tuple[str, int]
    database_url: str
    redis_url: str
    queue_name: str
    secret_key: str
    workers: int
    web_threads: int
    cookie_secure: bool
    trusted_proxies: int
    log_level: str
    event_retention_days: int
    retry_delay: float
    min_unit_size: int
    source_roots: tuple[str, ...]
    restore_roots: tuple[str, ...]
    throttle_load: float
    throttle_memory: float
    throttle_iowait: float
    catch_up_hours: float
    drive_root: Path
    drive_away_days: int
    tmdb_api_key: str
    tmdb_url: str
    # The settings the environment gave (they win over the Settings page).
    from_environment: frozenset[str] = frozenset()

    @property
    def bind_host(self) -> str:
        return self.bind[0]

    @property
    def bind_port(self) -> int:
        return self.bind[1]

    @property
    def bind_address(self) -> str:
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"{host}:{self.bind_port}"

    @property
    def restore_folders(self) -> tuple[str, ...]:
        """Where web restores may write besides the original places."""
        return self.restore_roots or self.source_roots

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse every setting from `environ` (the process environment by default)."""
    environ = os.environ if environ is None else environ
    errors = _unknown_settings(environ)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default).strip()
        try:
            values[setting.attr] = setting.parse(raw)
        except ValueError as exc:
            errors.append(f"{setting.name}: {exc}")
    if errors:
        raise ConfigError("Cairn cannot start, these settings are wrong:\n  " + "\n  ".join(errors))
    if not values["database_url"]:
        values["database_url"] = f"sqlite:///{values['data_dir'] / 'cairn.db'}"
    values["from_environment"] = frozenset(s.name for s in SETTINGS if s.name in environ)
    return Settings(**values)


_current: Settings | None = None


def current() -> Settings:
    """This process's settings: read from the environment the first time they are asked for
    (or set by `use`), then the same object everywhere. Nothing keeps a copy of its own."""
    global _current
    if _current is None:
        _current = load()
    return _current


def use(settings: Settings) -> Settings:
    """Make `settings` this process's (a test's own, say)."""
    global _current
    _current = settings
    return settings


def _unknown_settings(environ: Mapping[str, str]) -> list[str]:
    # A misspelt setting would otherwise be ignored without a word.
    known = [s.name for s in SETTINGS]
    errors = []
    for name in sorted(n for n in environ if n.startswith(PREFIX) and n not in known):
        hint = difflib.get_close_matches(name, known, n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        errors.append(f"{name}: not a Cairn setting{suggestion}")
    return errors


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir, readable only by the service user."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def secret_key(settings: Settings) -> str:
    """The configured key, or the one kept in the data dir (created on first start)."""
    if settings.secret_key:
        return settings.secret_key
    prepare_data_dir(settings)
    path = settings.data_dir / SECRET_KEY_FILE
    if not path.exists():
        _create_secret_key(path)
    return _read_secret_key(path)


def _create_secret_key(path: Path) -> None:
    # Written to a private temp file, then hard-linked into place: link() fails if the name
    # exists, so when web and worker start together exactly one key wins and nobody ever
    # reads a half-written file.
    tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _read_secret_key(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 600", path, mode)
        path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"{path} holds no usable key; delete it to have a new one generated")
    return key
