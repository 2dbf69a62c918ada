"""The household's settings from the Settings page (models/setting.py)."""
from peewee import *


def up(migrator, db):
    class StoredSetting(Model):
        name = CharField(max_length=64, unique=True)
        value = TextField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'stored_setting'
    db.create_tables([StoredSetting])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('stored_setting'))
