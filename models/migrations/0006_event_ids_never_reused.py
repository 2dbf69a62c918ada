"""Event ids are never handed out twice.

The live feed reads events by id (`id > last seen`). SQLite gives a new row the highest
id + 1, so deleting the newest events (a finished run's progress, or pruning everything
old) let the next event take an id the feed had already passed, and watchers never saw it.
AUTOINCREMENT makes SQLite remember the highest id ever used. PostgreSQL's sequences never
go back, so it needs nothing.

Written by hand: SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt.
"""
from peewee import *


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    with db.atomic():
        db.execute_sql('ALTER TABLE "event" RENAME TO "event_old"')
        db.execute_sql('CREATE TABLE "event" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                       '"at" DATETIME NOT NULL, "kind" VARCHAR(64) NOT NULL, '
                       '"subject" VARCHAR(128) NOT NULL, "level" VARCHAR(16) NOT NULL, '
                       '"message" TEXT NOT NULL, "payload" TEXT NOT NULL)')
        db.execute_sql('INSERT INTO "event" SELECT "id", "at", "kind", "subject", "level", '
                       '"message", "payload" FROM "event_old"')
        db.execute_sql('DROP TABLE "event_old"')
        db.execute_sql('CREATE INDEX "event_at" ON "event" ("at")')
        db.execute_sql('CREATE INDEX "event_subject" ON "event" ("subject")')


def down(migrator, db):
    pass  # the rebuilt table holds the same columns; nothing to undo
