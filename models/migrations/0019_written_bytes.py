"""Speed is data written: each part records what its latest attempt has written so far (from
rsync's progress figures, the file in flight included), and a run the sum it last saw."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('unit', 'written_bytes', BigIntegerField(default=0)),
        migrator.add_column('run', 'written_bytes', BigIntegerField(default=0)),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column('unit', 'written_bytes'),
                     migrator.drop_column('run', 'written_bytes'))
