"""The media library's records. So far: what TMDB said about a parsed title and year, cached
so that a movie is looked up once, not once per file or per retry."""

from __future__ import annotations

import datetime as dt

from peewee import BooleanField, CharField, DateTimeField, IntegerField

from models.base import BaseModel
from models.db import utcnow

LOOKUP_KEPT = dt.timedelta(days=30)


class MetadataLookup(BaseModel):
    query = CharField(max_length=300, unique=True)     # normalized title | year
    found = BooleanField(default=False)
    tmdb_id = IntegerField(null=True)
    title = CharField(max_length=300, default="")
    year = IntegerField(null=True)
    looked_at = DateTimeField(default=utcnow)

    @classmethod
    def fresh(cls, query: str, now: dt.datetime) -> MetadataLookup | None:
        return cls.get_or_none((cls.query == query) & (cls.looked_at > now - LOOKUP_KEPT))

    @classmethod
    def remember(cls, query: str, now: dt.datetime, **fields) -> None:
        values = {"found": False, "tmdb_id": None, "title": "", "year": None, **fields,
                  "looked_at": now}
        (cls.insert(query=query, **values)
         .on_conflict(conflict_target=[cls.query], update=values).execute())
