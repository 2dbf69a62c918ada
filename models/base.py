"""Base class of every Cairn model."""

from peewee import Model

from models.db import db


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Stateful:
    """For models with a `state` column that several processes may change."""

    def move(self, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        """Change state (and `fields`) only if it is still one of `from_states`; True if this
        caller did."""
        model = type(self)
        changed = (model.update(state=to_state, **fields)
                   .where((model.id == self.id) & model.state.in_(from_states)).execute())
        if changed:
            self.state = to_state
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)


def locked(query):
    """Lock the rows `query` reads until the surrounding transaction ends.

    PostgreSQL needs FOR UPDATE; SQLite has no such clause, and needs none: its transactions
    begin IMMEDIATE (see models/db.py), so one writer holds the whole database.
    """
    return query.for_update() if db.for_update else query


def bulk_insert(model: type[Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert many rows with one prepared statement (executemany).

    For the scanner's thousands of folder rows: peewee's insert_many builds the SQL value by
    value, which costs far more than the database's own work.
    """
    if not rows:
        return
    meta = model._meta
    names = ", ".join(f'"{meta.fields[c].column_name}"' for c in columns)
    marks = ", ".join([db.param] * len(columns))
    sql = f'INSERT INTO "{meta.table_name}" ({names}) VALUES ({marks})'
    db.cursor().executemany(sql, rows)
