"""`cairn library ...` and `cairn import scan`: the movie library from the command line.

`library` commands change settings and read the database; `library dupes` scans in the
command's own process (run it as the user the worker runs as). `import scan` records what
the inboxes hold and hands the files that are ready to the running worker.
"""

from __future__ import annotations

import sys
import time

import click

from jobs import dupes, imports
from jobs import library as lib
from jobs.commands import WAIT_POLL_SECONDS, require_worker
from jobs.engines.humane import format_bytes
from jobs.queue import with_db
from models import DupeScan, DuplicateSet, ImportItem, Inbox, Library, utcnow
from models.media import IMPORT_ACTIVE

library_cli = click.Group("library", help="The movie library: its folder, inboxes and duplicates.")
inbox_cli = click.Group("inbox", help="Folders where finished downloads land.")
import_cli = click.Group("import", help="Import what the inboxes hold.")
library_cli.add_command(inbox_cli)


@library_cli.command("root")
@click.argument("path", required=False)
@with_db
def library_root(path):
    """Set the library folder to PATH (or show it)."""
    if path is None:
        root = Library.current().root
        click.echo(root or "No library folder is set.")
        return
    try:
        library = lib.set_root(path)
    except lib.FolderRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"The movie library is {library.root}.")


@inbox_cli.command("add")
@click.argument("path")
@with_db
def inbox_add(path):
    """Watch PATH for finished downloads."""
    try:
        box = lib.add_inbox(path, added_by="cli")
    except lib.FolderRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"Watching the inbox {box.path}.")


@inbox_cli.command("list")
@with_db
def inbox_list():
    """The inboxes watched."""
    for box in Inbox.select().order_by(Inbox.path):
        click.echo(box.path)


@inbox_cli.command("remove")
@click.argument("path")
@with_db
def inbox_remove(path):
    """Stop watching PATH (its files stay where they are)."""
    box = Inbox.get_or_none(Inbox.path == path.rstrip("/") or "/")
    if box is None:
        raise click.ClickException(f"{path} is not an inbox (see `library inbox list`).")
    lib.remove_inbox(box)
    click.echo(f"No longer watching {box.path}.")


@import_cli.command("scan")
@click.option("--now", "hurry", is_flag=True,
              help="Take files at once, without waiting for them to settle.")
@click.option("--wait", is_flag=True, help="Wait until the files taken are done; exit 1 if any "
                                           "needs attention.")
@with_db
def import_scan(hurry, wait):
    """Import what is in the inboxes; one line per file: name, outcome, quality, reasons."""
    require_worker("the import")
    started_at = utcnow()
    found = imports.sweep(hurry=hurry)
    for problem in found.problems:
        click.echo(problem, err=True)
    items = _shown(found.present, started_at)
    if wait:
        items = _wait([item.id for item in items])
    for item in items:
        click.echo(_line(item))
    if not items:
        click.echo("Nothing new in the inboxes.")
    if wait and any(item.needs_attention for item in items):
        sys.exit(1)


def _shown(ids: list[int], since) -> list[ImportItem]:
    """The items of the files there now, less those imported before this scan."""
    items = ImportItem.select().where(ImportItem.id.in_(ids)).order_by(ImportItem.name)
    return [item for item in items
            if not (item.state == "imported" and item.finished_at and item.finished_at < since)]


def _wait(ids: list[int]) -> list[ImportItem]:
    while True:
        items = list(ImportItem.select().where(ImportItem.id.in_(ids)).order_by(ImportItem.name))
        working = [i for i in items if i.state in IMPORT_ACTIVE[1:]
                   or (i.state == "waiting" and i.not_before is not None)]
        if not working:
            return items
        time.sleep(WAIT_POLL_SECONDS)


def _line(item: ImportItem) -> str:
    if item.state == "imported":
        why = f"→ {item.destination}" + ("" if item.verified else " (unverified)")
    elif item.reasons:
        why = "; ".join(item.reasons)
    else:
        why = item.message or item.state_label
    return "\t".join([item.name, item.state, item.quality or "-", why])


@library_cli.command("dupes")
@click.option("--last", is_flag=True, help="Show the last scan's sets without scanning again.")
@with_db
def library_dupes(last):
    """Sets of identical files, and movies kept in several versions; one per paragraph."""
    scan = DupeScan.newest_done() if last else _scan_now()
    if scan is None:
        raise click.ClickException("No duplicate scan has finished yet; run `library dupes`.")
    if scan.state != "done":
        raise click.ClickException(scan.message)
    click.echo(f"{scan.message}\n")
    for dupe_set in scan.sets.order_by(DuplicateSet.id):
        click.echo(f"Identical, {format_bytes(dupe_set.size)} each:")
        for path in dupe_set.paths:
            click.echo(f"  {path}")
        click.echo("")
    for movie, files in dupes.versions():
        click.echo(f"{movie.label}, {len(files)} versions:")
        for record in files:
            click.echo(f"  {record.quality}\t{format_bytes(record.size)}\t{record.path}")
        click.echo("")


def _scan_now() -> DupeScan:
    scan = dupes.request(requested_by="cli", enqueue=False)
    if scan.state == "running":
        raise click.ClickException("A duplicate scan is running already; wait for it, or see "
                                   "the last one with --last.")
    click.echo("Scanning the library…", err=True)
    dupes.run_here(scan)
    return DupeScan.get_by_id(scan.id)
