"""A verification's bar counts the data read: the sizes of the files it chose; and where a good
copy of each damaged file is (Verification.copies)."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('verification', 'chosen_bytes', BigIntegerField(default=0)),
        migrator.add_column('verification', 'copies', JSONField(null=True)),
    )
    db.execute_sql("UPDATE verification SET copies = '[]'")
    migrator.migrate(migrator.add_not_null('verification', 'copies'))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('verification', 'chosen_bytes'),
                     migrator.drop_column('verification', 'copies'))
