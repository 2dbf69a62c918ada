"""Where a profile's snapshots live, as one type: this box's folder (`LocalRoot`, also an
adopted drive's) or a host's folder (`remote.RemoteRoot`). Both keep the same layout
(`<time>.partial/` while a run writes, `<time>/` when complete, `latest` pointing at the
newest) and answer the same questions, so the jobs ask them without branching on where.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jobs.engines import snapshots
from jobs.engines.snapshots import PARTIAL_SUFFIX, SNAPSHOT_NAME


class SnapshotRoot(Protocol):
    """A profile's folder of snapshots, wherever it is."""
    remote: bool   # on another machine: rsync reaches it over ssh, this box cannot read it

    def path(self, *parts: str) -> str: ...
    def spec(self, *parts: str) -> str: ...
    def list_snapshots(self) -> list[str]: ...
    def latest_snapshot(self) -> str | None: ...
    def partials(self) -> list[str]: ...
    def unused_name(self, now: dt.datetime) -> str: ...
    def make_dir(self, *parts: str) -> None: ...
    def has_partial(self, name: str) -> bool: ...
    def remove_partial(self, name: str) -> bool: ...
    def remove_snapshot(self, name: str) -> bool: ...
    def finalize(self, name: str) -> None: ...
    def free_bytes(self) -> int: ...
    def free_percent(self) -> float: ...
    def filesystem_type(self) -> str: ...
    def supports_hardlinks(self) -> bool: ...


@dataclass(frozen=True)
class LocalRoot:
    """`root`: the profile's folder of snapshots on this box (`<destination>/<profile>`)."""
    root: Path
    remote = False

    def path(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def spec(self, *parts: str) -> str:
        """How rsync names a folder here: its path."""
        return self.path(*parts)

    def list_snapshots(self) -> list[str]:
        return snapshots.list_snapshots(self.root)

    def latest_snapshot(self) -> str | None:
        return snapshots.latest_snapshot(self.root)

    def partials(self) -> list[str]:
        try:
            names = [e.name.removesuffix(PARTIAL_SUFFIX) for e in os.scandir(self.root)
                     if e.name.endswith(PARTIAL_SUFFIX)]
        except FileNotFoundError:
            return []
        return [name for name in names if SNAPSHOT_NAME.match(name)]

    def unused_name(self, now: dt.datetime) -> str:
        return snapshots.unused_snapshot_name(self.root, now)

    def make_dir(self, *parts: str) -> None:
        self.root.joinpath(*parts).mkdir(parents=True, exist_ok=True)

    def has_partial(self, name: str) -> bool:
        return (self.root / (name + PARTIAL_SUFFIX)).is_dir()

    def remove_partial(self, name: str) -> bool:
        return snapshots.remove_partial(self.root, name)

    def remove_snapshot(self, name: str) -> bool:
        return snapshots.remove_snapshot(self.root, name)

    def finalize(self, name: str) -> None:
        snapshots.finalize(self.root, name)

    def free_bytes(self) -> int:
        return snapshots.free_bytes(str(self._existing()))

    def free_percent(self) -> float:
        usage = shutil.disk_usage(self._existing())
        return 100.0 * usage.free / max(1, usage.total)

    def filesystem_type(self) -> str:
        return snapshots.filesystem_of(str(self._existing())).fstype

    def supports_hardlinks(self) -> bool:
        return snapshots.supports_hardlinks(str(self._existing()))

    def _existing(self) -> Path:
        """The root, or before a first run the nearest folder above it that exists."""
        folder = self.root
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return folder
