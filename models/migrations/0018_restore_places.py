"""Where restores go: a restore into a new folder beside the original (Restore.fresh: the
worker makes the folder, with a random suffix, and records its name in `target`), and the
folders of a host that restores may write to besides the original places (Host.restore_roots).
"""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('restore', 'fresh', BooleanField(default=False)),
        migrator.add_column('host', 'restore_roots', JSONField(null=True)),
    )
    # A callable default (list) cannot be written by add_column: fill it in, then require it.
    db.execute_sql("UPDATE host SET restore_roots = '[]'")
    migrator.migrate(migrator.add_not_null('host', 'restore_roots'))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('restore', 'fresh'),
                     migrator.drop_column('host', 'restore_roots'))
