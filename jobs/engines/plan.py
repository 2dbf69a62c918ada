"""Split a profile's sources into units of balanced size, and write each unit's rsync rules.

A folder much bigger than a unit should be is *split*: its biggest subfolders become units of
their own (or are split again), and everything else in it (its loose files, small and
unlisted subfolders) is its *rest*, one more unit. Small pieces of one source are then packed
together until a unit reaches the target size.

Every unit is one rsync of the whole source folder, narrowed by filter rules to its pieces. A
split folder's rules list its split-off subfolders explicitly and end with a catch-all for
everything else in it, so the units cover the source exactly once by construction: a folder
the scan could not name (invalid UTF-8) still falls into some rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.engines.filters import escape
from jobs.engines.scan import DirTotals

# A file costs about as much as this many bytes to copy (open, stat, create, set times), so
# ten thousand tiny files weigh like a video, not like nothing.
FILE_COST = 64 * 1024
SLICES_PER_WORKER = 3
MIN_UNIT_COST = 256 * 1024 * 1024
# Subfolders split off one folder at most. Each becomes a rule in the units that take it
# and in its folder's rest; rsync stops at a path's first matching rule, so even a few
# hundred rules cost it little next to copying.
MAX_SPLIT_CHILDREN = 1000


def cost(files: int, size: int) -> int:
    return size + files * FILE_COST


@dataclass(frozen=True)
class Selector:
    path: str   # relative to the source folder, "" for the folder itself
    rest: bool  # True: the folder's rest; False: the whole subtree


@dataclass
class Piece:
    source: int
    selector: Selector
    files: int
    bytes: int

    @property
    def cost(self) -> int:
        return cost(self.files, self.bytes)


@dataclass
class UnitPlan:
    source: int                  # index into the profile's sources
    selectors: list[Selector] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    rules: list[str] = field(default_factory=list)  # "+ pattern" / "- pattern", in order

    @property
    def cost(self) -> int:
        return cost(self.files, self.bytes)

    @property
    def label(self) -> str:
        names = [("rest of " if s.rest else "") + (s.path or "(top)") for s in self.selectors]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    def add(self, piece: Piece) -> None:
        self.selectors.append(piece.selector)
        self.files += piece.files
        self.bytes += piece.bytes


@dataclass
class SourcePlan:
    """How one source was split: folder -> the subfolders split off from it."""
    split: dict[str, list[str]] = field(default_factory=dict)

    def is_split(self, path: str) -> bool:
        return path in self.split


@dataclass
class Plan:
    units: list[UnitPlan]
    sources: list[SourcePlan]

    def split_folders(self, source: int) -> list[str]:
        return [p for p in self.sources[source].split if p]


ChildrenOf = Callable[[int, str], list[DirTotals]]


def plan(roots: list[DirTotals], children_of: ChildrenOf, concurrency: int,
         min_unit: int | None = None) -> Plan:
    """Plan units for sources whose totals are `roots`; `children_of(source, path)` gives a
    folder's direct subfolders (as scanned). No unit is planned smaller than `min_unit`
    (work, in bytes) unless its whole source is."""
    total = sum(cost(r.files, r.bytes) for r in roots)
    floor = MIN_UNIT_COST if min_unit is None else min_unit
    target = max(total // max(1, SLICES_PER_WORKER * concurrency), floor, 1)
    sources = [SourcePlan() for _ in roots]
    pieces: list[Piece] = []
    for index, root in enumerate(roots):
        pieces.extend(_split(index, root, children_of, target, sources[index]))
    units = _pack(pieces, target)
    for unit in units:
        unit.rules = unit_rules(sources[unit.source], set(unit.selectors))
    return Plan(units, sources)


def _split(source: int, root: DirTotals, children_of: ChildrenOf, target: int,
           source_plan: SourcePlan) -> list[Piece]:
    pieces: list[Piece] = []
    work = [root]
    while work:
        node = work.pop()
        if cost(node.files, node.bytes) <= target or node.subdirs == 0:
            pieces.append(Piece(source, Selector(node.path, False), node.files, node.bytes))
            continue
        kids = sorted(children_of(source, node.path),
                      key=lambda k: cost(k.files, k.bytes), reverse=True)
        rest_files, rest_bytes = node.files, node.bytes
        taken: list[DirTotals] = []
        for kid in kids:
            # Small subfolders are taken too (a Documents folder of six hundred small ones
            # must still spread over the workers); packing groups them into units later.
            if cost(rest_files, rest_bytes) <= target or len(taken) >= MAX_SPLIT_CHILDREN:
                break
            taken.append(kid)
            rest_files -= kid.files
            rest_bytes -= kid.bytes
        if not taken:
            pieces.append(Piece(source, Selector(node.path, False), node.files, node.bytes))
            continue
        source_plan.split[node.path] = [k.path for k in taken]
        pieces.append(Piece(source, Selector(node.path, True), rest_files, rest_bytes))
        work.extend(taken)
    return pieces


def _pack(pieces: list[Piece], target: int) -> list[UnitPlan]:
    """First fit decreasing, within one source; the biggest units come first, so the longest
    work starts first."""
    units: list[UnitPlan] = []
    for piece in sorted(pieces, key=lambda p: p.cost, reverse=True):
        home = next((u for u in units if u.source == piece.source
                     and u.cost + piece.cost <= target), None)
        if home is None:
            home = UnitPlan(piece.source)
            units.append(home)
        home.add(piece)
    units.sort(key=lambda u: u.cost, reverse=True)
    return units


def unit_rules(source_plan: SourcePlan, selectors: set[Selector]) -> list[str]:
    """rsync filter rules that select exactly `selectors` of one source.

    Rules are checked in order and the first match decides; rsync never looks inside an
    excluded folder. Each split folder's rules name its split-off subfolders, then end with a
    catch-all for the rest of its entries, so every path is decided.
    """
    if selectors == {Selector("", False)}:
        return []
    inside = {s.path for s in selectors}
    return _folder_rules("", source_plan, selectors, inside)


def _folder_rules(folder: str, source_plan: SourcePlan, selectors: set[Selector],
                  inside: set[str]) -> list[str]:
    rules: list[str] = []
    rest_here = Selector(folder, True) in selectors
    descends = False
    for kid in source_plan.split.get(folder, []):
        if source_plan.is_split(kid) and any(p == kid or p.startswith(kid + "/") for p in inside):
            rules.append("+ " + escape(kid, "/"))
            rules.extend(_folder_rules(kid, source_plan, selectors, inside))
            descends = True
        elif Selector(kid, False) in selectors:
            rules.append("+ " + escape(kid, "/***"))
        elif rest_here:
            # Only the rest's catch-all would take it; without the rest, the closing
            # exclude below already leaves it out.
            rules.append("- " + escape(kid, "/"))
    rules.append(("+ " + escape(folder, "/**")) if rest_here else ("- " + escape(folder, "/*")))
    if not descends:
        # rsync tries a path against the rules in order. Every path two or more levels
        # below this folder lies in a subfolder the rules above already let in (rsync never
        # enters one they leave out), so it is taken at once instead of after every
        # subfolder's rule: with hundreds of split-off subfolders that is most of the cost.
        rules.insert(0, "+ " + escape(folder, "/*/**"))
    return rules
