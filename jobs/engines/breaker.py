"""Circuit breakers for outside services (hosts over SSH; later metadata lookups and
notification targets): after a failure, stop asking for a while, longer each time, so that an
outage costs one quick refusal per job instead of a timeout and a retry storm.

closed: calls go through. A failure opens the breaker with the next wait of WAITS.
open: calls are refused until `next_try`; then one caller may probe (half-open).
half-open: one probe is out; others are refused. Its success closes the breaker (one success
is enough), its failure opens it again with a longer wait. A probe that never reports back
(its worker died) frees the breaker after PROBE_TIMEOUT.

Pure decisions on plain values; jobs/breakers.py keeps the state in the database, shared by
every worker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
WAITS = tuple(dt.timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240, 480, 960, 1440))
PROBE_TIMEOUT = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class State:
    state: str = CLOSED
    failures: int = 0                      # in a row, since the last success
    next_try: dt.datetime | None = None    # open: when a probe may go; half-open: when it began
    last_error: str = ""


def wait_after(failures: int) -> dt.timedelta:
    """How long the breaker stays open after the `failures`-th failure in a row."""
    return WAITS[min(max(failures, 1), len(WAITS)) - 1]


def may_call(current: State, now: dt.datetime) -> tuple[bool, State]:
    """Whether a call may go now, and the state to record if it may (an open breaker whose
    wait is over lets this one call through as the probe)."""
    if current.state == CLOSED:
        return True, current
    if current.state == OPEN and current.next_try is not None and now >= current.next_try:
        return True, replace(current, state=HALF_OPEN, next_try=now)
    if current.state == HALF_OPEN and current.next_try is not None \
            and now - current.next_try >= PROBE_TIMEOUT:
        return True, replace(current, next_try=now)
    return False, current


def after_success(current: State) -> State:
    return State()


def after_failure(current: State, error: str, now: dt.datetime) -> State:
    failures = current.failures + 1
    return State(OPEN, failures, now + wait_after(failures), error)
