"""One alert per problem: an open alert counts the times its problem happened again (a retry,
the next file of one import batch) and remembers when the first did."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('alert', 'problem', CharField(max_length=128, default='')),
        migrator.add_column('alert', 'count', IntegerField(default=1)),
        migrator.add_column('alert', 'first_at', DateTimeField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column('alert', 'problem'),
                     migrator.drop_column('alert', 'count'),
                     migrator.drop_column('alert', 'first_at'))
