"""Folders in the picker sort as people read names (models/backup.py ScanDir.sort_key); scans
made before this keep their byte order until they are scanned again."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column('scan_dir', 'sort_key', BlobField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('scan_dir', 'sort_key'))
