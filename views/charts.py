"""Small server-rendered SVG charts: no chart library, no script, nothing the CSP refuses.

A speed graph is one polyline; drawing it by hand is a dozen lines, less than wiring in a
library and keeping it vendored.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.engines.humane import format_bytes, format_duration


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    line: str           # SVG polyline points
    area: str           # the same, closed along the bottom edge, for the fill
    peak_label: str     # the top of the scale, e.g. "120 MB/s"
    span_label: str     # the time the graph covers, e.g. "3 min 12 s"
    last_label: str     # the newest speed


def speed_chart(speed: dict | None, width: int = 600, height: int = 120) -> Chart | None:
    """The run's speed over time, scaled to fill `width` × `height`; None with < 2 points."""
    points = (speed or {}).get("points", [])
    if len(points) < 2:
        return None
    start, span = points[0][0], max(points[-1][0] - points[0][0], 1e-9)
    peak = max(max(rate for _, rate in points), 1)
    coords = [(round((at - start) / span * width, 1),
               round(height - rate / peak * (height - 4), 1)) for at, rate in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    area = f"0,{height} {line} {width},{height}"
    return Chart(width, height, line, area, f"{format_bytes(peak)}/s",
                 format_duration(points[-1][0]), f"{format_bytes(points[-1][1])}/s")
