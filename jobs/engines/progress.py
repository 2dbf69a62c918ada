"""Progress figures people can trust: never backwards, ETA only once it means something.

Done and total are weighed the same way the planner weighs work (bytes, plus a fixed cost per
file), so a folder of small files moves the bar as much as the time it takes; the bytes done
count a file being copied as far as it is written, so the bar moves during a large file.

Speed is data *written* per second (exponentially smoothed): files left unchanged or
hardlinked to the previous snapshot take no time to speak of and are never speed. The ETA is
the work still to do over the smoothed rate of the work that takes time (data written, plus
the fixed cost of every file): the files left, and of the data left the share that the run
has had to write so far (all of it on a first backup, little on an unchanged one). It is
hidden until the run has gone long enough, and far enough, for the rate to be stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobs.engines.plan import FILE_COST, cost

SMOOTHING_SECONDS = 20.0     # time constant of the rate's moving average
ETA_AFTER_SECONDS = 10.0
ETA_AFTER_FRACTION = 0.01
UNFINISHED_CAP = 0.999       # 100 % is shown only when the run has finished


@dataclass(frozen=True)
class Progress:
    files: int
    bytes: int
    total_files: int
    total_bytes: int
    fraction: float
    rate: float              # smoothed work per second, in bytes (files weighed in)
    byte_rate: float         # smoothed bytes per second, for people
    eta_seconds: float | None
    written: int = 0         # data written by the attempts now running (a restart counts anew)


def fraction_done(files: int, size: int, total_files: int, total_bytes: int) -> float:
    total = cost(total_files, total_bytes)
    if total <= 0:
        return 0.0
    return min(cost(files, size) / total, 1.0)


def smooth(previous: float | None, sample: float, elapsed: float) -> float:
    if previous is None or previous <= 0:
        return sample
    weight = 1.0 - math.exp(-max(elapsed, 0.0) / SMOOTHING_SECONDS)
    return previous + weight * (sample - previous)


def advance(before: Progress | None, files: int, size: int, total_files: int, total_bytes: int,
            since_last: float, running_for: float, written: int | None = None) -> Progress:
    """The run's figures after new counts arrive `since_last` seconds after the previous ones.

    `written` is the data written so far by the units' current attempts (None: all of `size`
    was written). Counts of a restarted unit start from zero again, so counts, totals and the
    fraction are each held at their highest value so far, and a drop of `written` is no
    negative speed; totals grow when rsync sees more than the scan.
    """
    written = size if written is None else written
    if before is not None:
        files, size = max(files, before.files), max(size, before.bytes)
        total_files, total_bytes = max(total_files, before.total_files), max(total_bytes, before.total_bytes)
    total_files, total_bytes = max(total_files, files), max(total_bytes, size)
    fraction = min(fraction_done(files, size, total_files, total_bytes), UNFINISHED_CAP)
    rate, byte_rate = 0.0, 0.0
    if before is not None and since_last > 0:
        fraction = max(fraction, before.fraction)
        wrote = max(written - before.written, 0)
        work = max(files - before.files, 0) * FILE_COST + wrote
        rate = smooth(before.rate, work / since_last, since_last)
        byte_rate = smooth(before.byte_rate, wrote / since_last, since_last)
    elif before is not None:
        fraction, rate, byte_rate = max(fraction, before.fraction), before.rate, before.byte_rate
    eta = None
    if running_for >= ETA_AFTER_SECONDS and fraction >= ETA_AFTER_FRACTION and rate > 0:
        eta = still_to_do(files, size, total_files, total_bytes, written) / rate
    return Progress(files, size, total_files, total_bytes, fraction, rate, byte_rate, eta, written)


def still_to_do(files: int, size: int, total_files: int, total_bytes: int, written: int) -> float:
    """The work left that takes time: every file left, and of the data left the share that
    had to be written of the data done so far (all of it before anything is done)."""
    share = min(written / size, 1.0) if size > 0 else 1.0
    return (total_files - files) * FILE_COST + (total_bytes - size) * share


SPEED_POINTS = 240          # a run's speed graph keeps at most this many points


def add_speed_point(history: dict, at: float, byte_rate: float,
                    limit: int = SPEED_POINTS) -> dict:
    """The speed history `{"step": s, "points": [[seconds since start, bytes/s], ...]}` with
    one more sample, if at least `step` seconds have passed since the last point.

    When the points pass `limit`, every other one goes and the step doubles, so a run of days
    keeps the whole shape of its speed in bounded space at an even spacing. Dropping, not
    averaging, is enough: the rate is already a 20-second moving average.
    """
    step = history.get("step", 1.0)
    points = history.get("points", [])
    if points and at - points[-1][0] < step:
        return history
    points = [*points, [round(at, 1), round(byte_rate)]]
    if len(points) > limit:
        points, step = points[1::2], step * 2
    return {"step": step, "points": points}
