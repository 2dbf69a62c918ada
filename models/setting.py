"""The household's settings changed on the Settings page, kept in the database so that the web
and the worker (on any box) read the same; config.overlay lays them over the environment's."""

from __future__ import annotations

import threading
import time

from peewee import CharField, DateTimeField, TextField

import config
from models.base import BaseModel
from models.db import utcnow

# The worker re-reads the stored settings at most this often; the web process that saved a
# value sees it at once.
FRESH_SECONDS = 1.0


class StoredSetting(BaseModel):
    name = CharField(max_length=64, unique=True)
    value = TextField()
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "stored_setting"

    @classmethod
    def stored(cls) -> dict[str, str]:
        return {row.name: row.value for row in cls.select()}

    @classmethod
    def put(cls, name: str, value: str) -> None:
        """Keep `value` for `name` ('' removes it: the default applies again)."""
        if value == "":
            cls.delete().where(cls.name == name).execute()
        else:
            (cls.insert(name=name, value=value, updated_at=utcnow())
             .on_conflict(conflict_target=[cls.name],
                          update={cls.value: value, cls.updated_at: utcnow()})
             .execute())
        forget()


# id(settings) -> (read at, settings, what they are now); holding `settings` keeps its id unique.
_cache: dict[int, tuple[float, config.Settings, config.Settings]] = {}
_lock = threading.Lock()


def live(settings: config.Settings) -> config.Settings:
    """`settings` as the household set them now (re-read at most every FRESH_SECONDS)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(id(settings))
    if cached and cached[1] is settings and now - cached[0] < FRESH_SECONDS:
        return cached[2]
    result = config.overlay(settings, StoredSetting.stored())
    with _lock:
        if len(_cache) > 16:
            _cache.clear()
        _cache[id(settings)] = (now, settings, result)
    return result


def forget() -> None:
    with _lock:
        _cache.clear()
