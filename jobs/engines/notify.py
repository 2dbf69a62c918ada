"""Notifications: which events people may ask to be told about, how an Event becomes one,
and sending it to an Apprise target (Discord, email, ntfy, Gotify, a webhook... any URL
Apprise knows). Pure: no database; the job (jobs/notify.py) records, paces and retries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import apprise

# What a target may subscribe to, in the order the settings page lists them.
EVENTS = {
    "backup.failed": "Backup failed",
    "backup.partial": "Backup partly done",
    "backup.succeeded": "Backup succeeded",
    "drive.connected": "Drive connected",
    "drive.safe_to_unplug": "Drive safe to unplug",
    "import.imported": "Import done",
    "import.blocked": "Import blocked",
    "import.failed": "Import failed",
    "verification.failed": "Verification failed",
    "breaker.opened": "Outside service paused",
}
# The ones that also go to the in-app alert centre, to be acknowledged.
ALERTS = {"backup.failed", "backup.partial", "import.blocked", "import.failed",
          "verification.failed", "breaker.opened"}
DEFAULT_EVENTS = ("backup.failed", "backup.partial", "import.blocked", "import.failed",
                  "verification.failed", "breaker.opened", "drive.safe_to_unplug")
MAX_URL = 2000


class NotifyError(Exception):
    """A target refused or could not be reached; the message says what Apprise saw."""


@dataclass(frozen=True)
class Notice:
    key: str        # one of EVENTS, or "test"
    title: str
    body: str
    level: str      # info | warning | error


def notice_of(kind: str, level: str, message: str, payload: dict) -> Notice | None:
    """The notification an Event makes, or None for events nobody subscribes to."""
    key = _key(kind, payload)
    if key is None:
        return None
    return Notice(key, f"Cairn: {EVENTS[key]}", message, _level(key, level))


def _key(kind: str, payload: dict) -> str | None:
    state = payload.get("state")
    if kind == "run.finished" and state in ("failed", "partial", "succeeded"):
        return f"backup.{state}"
    if kind == "verification.finished" and state in ("damaged", "failed"):
        return "verification.failed"
    return {"drive.connected": "drive.connected", "drive.ejected": "drive.safe_to_unplug",
            "import.imported": "import.imported", "import.blocked": "import.blocked",
            "import.failed": "import.failed", "breaker.opened": "breaker.opened"}.get(kind)


def _level(key: str, level: str) -> str:
    if key in ("backup.failed", "import.failed", "verification.failed"):
        return "error"
    return "warning" if key in ALERTS else level


def check_url(url: str) -> str:
    """The URL, trimmed, if Apprise knows its kind; else NotifyError saying what to write."""
    url = (url or "").strip()
    if not url:
        raise NotifyError("Write the target's Apprise URL, such as json://host/path or "
                          "mailto://user:password@example.com.")
    if len(url) > MAX_URL or any(ord(c) < 32 for c in url):
        raise NotifyError(f"An Apprise URL is one line of at most {MAX_URL} characters.")
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        raise NotifyError("Apprise does not know this URL. It starts with the service's "
                          "scheme: discord://, mailto://, ntfy://, gotify://, json://, ...")
    return url


# Apprise's privacy mode masks passwords and tokens but not the path of a generic webhook
# (often its secret: /hooks/<token>) nor an ntfy topic (whoever knows it may read it); the
# query may hold custom headers (Authorization). Those are masked here the way Apprise masks.
SECRET_PATHS = {"json", "jsons", "form", "forms", "xml", "xmls", "ntfy", "ntfys"}
_WORDS = re.compile(r"[/:@?&=#,]+")


def shown_url(url: str) -> str:
    """The URL with its secrets masked, for pages, sockets and logs: Apprise's own privacy
    mode, without the query, and the path of webhooks and ntfy topics masked too."""
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return "(not a valid URL)"
    parts = urlsplit(plugin.url(privacy=True))
    path = parts.path
    if parts.scheme in SECRET_PATHS:
        path = "/".join(_masked(segment) for segment in path.split("/"))
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _masked(word: str) -> str:
    return f"{word[0]}...{word[-1]}" if len(word) > 2 else "*" * len(word)


def scrub(text: str, url: str) -> str:
    """`text` (an error Apprise or a server said) with every part of `url` that its shown
    form masks replaced by ****, so no secret of it reaches a page, a log or the database."""
    shown = shown_url(url)
    body = url.split("://", 1)[-1]
    secrets = set(_WORDS.split(body)) | set(re.split(r"[/:@?&=#,\s]+", unquote(body)))
    password = urlsplit(url).password or ""
    for secret in sorted(secrets, key=len, reverse=True):
        if (len(secret) >= 3 or secret == password and secret) and secret not in shown:
            text = text.replace(secret, "****")
    return text


def send(url: str, notice: Notice) -> None:
    """Send one notice to one target; NotifyError with Apprise's words if it did not go."""
    target = apprise.Apprise()
    if not target.add(url):
        raise NotifyError("Apprise does not know this URL any more.")
    kind = {"error": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        notice.level, apprise.NotifyType.INFO)
    with apprise.LogCapture(level=logging.WARNING) as said:
        sent = target.notify(notice.body, title=notice.title, notify_type=kind)
    if not sent:
        lines = [line.split(" - ", 2)[-1] for line in said.getvalue().splitlines() if line]
        raise NotifyError(scrub(lines[-1], url) if lines
                          else "The target did not accept the notification.")
