"""Base class of every Cairn model."""

from peewee import Model

from models.db import db


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def locked(query):
    """Lock the rows `query` reads until the surrounding transaction ends.

    PostgreSQL needs FOR UPDATE; SQLite has no such clause, and needs none: its transactions
    begin IMMEDIATE (see models/db.py), so one writer holds the whole database.
    """
    return query.for_update() if db.for_update else query
