"""Backup profiles, their runs and the units a run is split into, with their state changes.

Run states: queued → scanning → running → finalizing → succeeded | partial | failed |
cancelled | interrupted (see jobs/README.md). Unit states: pending (planned) → queued (handed
to Huey) → running → done | failed (dead-lettered after its retries) | cancelled. Every step
that two workers could race for is a conditional UPDATE whose row count says who won.

One module per aggregate: `profile` (profiles, run states), `run` (runs, units, messages),
`scan` (scans and exclude previews).
"""

from models.backup.profile import (
    ACTIVE_STATES,
    FINISHED_STATES,
    STATE_LABELS,
    Profile,
    path_key,
    slugify,
)
from models.backup.run import LOG_LEVELS, AlreadyRunning, LogLine, Run, RunMessage, RunMessageText, Unit
from models.backup.scan import ExcludePreview, Scan, ScanDir, ScanLink

__all__ = ["ACTIVE_STATES", "FINISHED_STATES", "LOG_LEVELS", "STATE_LABELS", "AlreadyRunning",
           "ExcludePreview", "LogLine", "Profile", "Run", "RunMessage", "RunMessageText", "Scan",
           "ScanDir", "ScanLink", "Unit", "path_key", "slugify"]
