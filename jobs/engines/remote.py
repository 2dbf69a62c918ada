"""A profile's folder on another machine, as a snapshot destination: the same layout as on a
local disk (`<time>.partial/` while a run writes, renamed to `<time>/` when complete, `latest`
pointing at the newest), kept with a few fixed commands over ssh. Every path is passed as an
argument, quoted for the remote shell; scripts are fixed text that reads them as "$1", "$2".
Assumes a Linux host with GNU coreutils and findutils, as rsync hosts are.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass
from pathlib import Path

from jobs.engines import ssh
from jobs.engines.snapshots import LATEST, PARTIAL_SUFFIX, SNAPSHOT_NAME, next_name

_LIST = 'test -d "$1" || exit 0; find "$1" -mindepth 1 -maxdepth 1 -printf "%y %f\\n"'
# The host's filesystem is flushed (sync -f: syncfs) before the rename, as on this box.
_FINALIZE = ('set -e; sync -f "$1" 2>/dev/null || sync; '
             'if [ -d "$1/$2.partial" ]; then mv -T -- "$1/$2.partial" "$1/$2"; fi; '
             '[ -d "$1/$2" ]; ln -sfn -- "$2" "$1/.latest.tmp"; mv -T -- "$1/.latest.tmp" '
             f'"$1/{LATEST}"; sync -f "$1" 2>/dev/null || sync')
_LINK_PROBE = ('d=$(mktemp -d "$1/.cairn-probe-XXXXXX") || exit 1; touch "$d/a" && ln "$d/a" '
               '"$d/b"; r=$?; rm -rf -- "$d"; exit $r')


@dataclass(frozen=True)
class RemoteRoot:
    """`root` (absolute, on `target`): the profile's folder of snapshots there."""
    target: ssh.Target
    root: str
    key: Path
    known_hosts: Path
    remote = True   # as destination.SnapshotRoot has it

    def _run(self, command: list[str]) -> str:
        return ssh.run_remote(self.target, self.key, self.known_hosts, command)

    def _sh(self, script: str, *args: str) -> str:
        return self._run(["sh", "-c", script, "sh", *args])

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def spec(self, *parts: str) -> str:
        """How rsync names a folder here."""
        return ssh.remote_spec(self.target, self.path(*parts))

    def entries(self) -> list[tuple[str, str]]:
        """(type letter as find prints it, name) of everything in the root."""
        lines = self._sh(_LIST, self.root).splitlines()
        return [(line[0], line[2:]) for line in lines if len(line) > 2]

    def list_snapshots(self) -> list[str]:
        return sorted(name for kind, name in self.entries()
                      if kind == "d" and SNAPSHOT_NAME.match(name))

    def latest_snapshot(self) -> str | None:
        found = self.list_snapshots()
        return found[-1] if found else None

    def partials(self) -> list[str]:
        return [name.removesuffix(PARTIAL_SUFFIX) for kind, name in self.entries()
                if kind == "d" and name.endswith(PARTIAL_SUFFIX)
                and SNAPSHOT_NAME.match(name.removesuffix(PARTIAL_SUFFIX))]

    def unused_name(self, now: dt.datetime) -> str:
        """As snapshots.unused_snapshot_name: names only ever grow."""
        names = [name.removesuffix(PARTIAL_SUFFIX) for _, name in self.entries()]
        return next_name([n for n in names if SNAPSHOT_NAME.match(n)], now)

    def make_dir(self, *parts: str) -> None:
        self._run(["mkdir", "-p", "--", self.path(*parts)])

    def has_partial(self, name: str) -> bool:
        return name in self.partials()

    def remove_partial(self, name: str) -> bool:
        if not SNAPSHOT_NAME.match(name):
            raise ValueError(f"{name!r} is not a snapshot name")
        if not self.has_partial(name):
            return False
        self._run(["rm", "-rf", "--one-file-system", "--", self.path(name + PARTIAL_SUFFIX)])
        return True

    def remove_snapshot(self, name: str) -> bool:
        """Delete a complete snapshot that retention let go (never the latest)."""
        if not SNAPSHOT_NAME.match(name):
            raise ValueError(f"{name!r} is not a snapshot name")
        if name not in self.list_snapshots():
            return False
        if name == self.latest_snapshot():
            raise ValueError(f"{name} is the latest snapshot")
        self._run(["rm", "-rf", "--one-file-system", "--", self.path(name)])
        return True

    def free_percent(self) -> float:
        total, free = self._df()
        return 100.0 * free / max(1, total)

    def finalize(self, name: str) -> None:
        if not SNAPSHOT_NAME.match(name):
            raise ValueError(f"{name!r} is not a snapshot name")
        self._sh(_FINALIZE, self.root, name)

    def filesystem_type(self) -> str:
        return self._run(["stat", "-f", "-c", "%T", "--", self.root]).strip()

    def supports_hardlinks(self) -> bool:
        try:
            self._sh(_LINK_PROBE, self.root)
        except ssh.SshError:
            return False
        return True

    def free_bytes(self) -> int:
        return self._df()[1]

    def _df(self) -> tuple[int, int]:
        """(total, free) bytes of the host's filesystem that holds the root."""
        fields = self._run(["df", "-P", "-B1", "--", self.root]).splitlines()[-1].split()
        return int(fields[1]), int(fields[3])
