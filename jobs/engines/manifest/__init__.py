"""A snapshot's manifest: every entry's place, kind, size, times, mode, owner and content hash,
in one SQLite file per snapshot that the web process can read without touching the tree.

Written by the worker when a run finishes. Regular files that are hardlinks of the previous
snapshot's files (rsync --link-dest made them: same inode on the same filesystem) take that
manifest's hash, so only new data is read. Paths are kept as raw bytes (`parent`, `name`), so
names that are not UTF-8 survive; callers speak `str` with surrogate escapes (os.fsdecode).

The same package answers the pages' questions (a folder's entries, sorted and paged; find by
name; compare two snapshots) and re-reads files for verification.

Its parts: `schema` (the file and how it is opened), `paths` (paths from outside),
`writing`, `reading` (and comparing), `verifying`. The file hash is jobs/engines/hashing.py,
which the media import uses too.
"""

from jobs.engines.hashing import ALGORITHM, BUFFER_BYTES, hash_fd, hash_file
from jobs.engines.manifest.paths import clean_path, join, open_inside, split
from jobs.engines.manifest.reading import Comparison, Entry, Manifest, compare, path_for
from jobs.engines.manifest.schema import (
    FORMAT_VERSION,
    PROGRESS_SECONDS,
    SORTS,
    ManifestError,
    PathRefused,
)
from jobs.engines.manifest.verifying import Check, choose, note, verify
from jobs.engines.manifest.writing import Summary, _Walk, write

__all__ = ["ALGORITHM", "BUFFER_BYTES", "Check", "Comparison", "Entry", "FORMAT_VERSION",
           "Manifest", "ManifestError", "PathRefused", "PROGRESS_SECONDS", "SORTS", "Summary",
           "_Walk", "choose", "clean_path", "compare", "hash_fd", "hash_file", "join", "note",
           "open_inside", "path_for", "split", "verify", "write"]
