"""Whether a file in the inbox goes into the library: every rule is evaluated and every
reason kept, so the needs-attention list says all that is wrong at once, not one thing per
retry.

A pure function of plain values: the candidate file (name, size, where it sits, its content
hash when known), what the library already has of that movie, the quality profile, and the
free space. The import job gathers those and acts on the Decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from jobs.engines.humane import format_bytes
from jobs.engines.release import LADDER, VIDEO_EXTENSIONS, Quality, Release, extension

DANGEROUS_EXTENSIONS = {"exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "ps1", "vbs",
                        "vbe", "js", "jse", "wsf", "wsh", "jar", "lnk", "dll", "sh", "apk",
                        "app", "reg", "hta", "cpl", "gadget", "iso.exe"}
WORKING_MARKERS = ("_UNPACK_", "_FAILED_")
PARTIAL_SUFFIXES = (".part", ".!qb", ".!ut", ".crdownload", ".partial", ".tmp", ".aria2")
SAMPLE_BYTES = 300 * 1024 * 1024        # a file named "sample" under this size is one
SAMPLE_SECONDS = 10 * 60                # ... or one that plays for less, when ffprobe says
FREE_MARGIN_BYTES = 100 * 1024 * 1024


class ProfileError(ValueError):
    """A quality profile Cairn cannot use, with a message for people."""


@dataclass(frozen=True)
class QualityProfile:
    """Which qualities a movie may be imported in, in order of preference (best last, as on
    the ladder), up to which one an existing file is upgraded, and whether it is at all."""

    name: str = "Any"
    allowed: tuple[str, ...] = LADDER[1:]
    cutoff: str = "Bluray-1080p"
    upgrades: bool = True
    prefer_proper: bool = True

    def __post_init__(self) -> None:
        unknown = [q for q in self.allowed if q not in LADDER]
        if unknown:
            raise ProfileError(f"{unknown[0]!r} is not a quality Cairn knows.")
        if not self.allowed:
            raise ProfileError("Allow at least one quality.")
        if self.cutoff not in self.allowed:
            raise ProfileError("The cutoff must be one of the allowed qualities.")

    def order(self, quality: Quality) -> tuple[int, int]:
        """Where a quality stands in this profile (its place, then its revision)."""
        return (self.allowed.index(quality.name), quality.revision)

    def met_by(self, quality: Quality) -> bool:
        return quality.name in self.allowed and \
            self.allowed.index(quality.name) >= self.allowed.index(self.cutoff)


@dataclass(frozen=True)
class Existing:
    """The file the library already holds for the movie."""

    path: str
    quality: Quality
    content_hash: str = ""


@dataclass(frozen=True)
class Candidate:
    path: str                              # as found in the inbox
    size: int
    release: Release
    content_hash: str = ""                 # when already computed
    runtime_seconds: float | None = None   # from ffprobe, when installed


@dataclass
class Decision:
    action: str                        # import | upgrade | link_identical | reject
    reasons: list[str] = field(default_factory=list)   # why not; or, accepted, notes on how
    replaces: Existing | None = None
    overridable: bool = False          # rejected for policy only: "import anyway" may take it

    @property
    def accepted(self) -> bool:
        return self.action != "reject"


def decide(candidate: Candidate, profile: QualityProfile, *, existing: Existing | None = None,
           imported_before: bool = False, identical_in_library: str = "",
           free_bytes: int | None = None, same_filesystem: bool = False,
           margin: int = FREE_MARGIN_BYTES, force: bool = False) -> Decision:
    """Every reason not to import `candidate`, or how to import it.

    Reasons come in two kinds. Some are facts no one can wave away (an executable, a file
    still being written, an empty file, no title, no room); the rest are the profile's and
    the library's policy, which a person may override ("import anyway", `force`): the file
    then goes in beside what the library has, unless it is better and replaces it."""
    hard = [*_file_reasons(candidate), *_identity_reasons(candidate)]
    soft = []
    ext = extension(candidate.path)
    if ext not in VIDEO_EXTENSIONS and ext not in DANGEROUS_EXTENSIONS:
        soft.append(f"Not a video file (.{ext or 'no extension'}).")
    if _is_sample(candidate):
        soft.append("A sample, not the movie.")
    if imported_before:
        soft.append("Already imported: a file with the same content was imported before.")
    quality = candidate.release.quality
    if quality.name not in profile.allowed:
        if quality.name == "Unknown":
            soft.append("The quality could not be read from the name (no 1080p, BluRay, "
                        f"WEB-DL or the like in it), and the quality profile {profile.name!r} "
                        "takes only the qualities it lists.")
        else:
            soft.append(f"The quality profile {profile.name!r} does not take {quality.name}.")
    replaces = None
    if existing is not None and not identical_in_library:
        problem = _upgrade_problem(quality, existing, profile)
        if problem:
            soft.append(problem)
        else:
            replaces = existing
    needs_room = not same_filesystem and not identical_in_library
    if needs_room and free_bytes is not None and free_bytes - candidate.size < margin:
        hard.append(f"Not enough free space in the library: {format_bytes(free_bytes)} free, "
                    f"{format_bytes(candidate.size)} needed plus a margin of {format_bytes(margin)}.")
    if hard or (soft and not force):
        return Decision("reject", hard + soft, overridable=not hard)
    notes = [f"Imported anyway: {reason}" for reason in soft]
    if identical_in_library:
        return Decision("link_identical", [*notes, f"The same content is already in the library "
                                                   f"at {identical_in_library}: nothing copied."])
    return Decision("upgrade" if replaces else "import", notes, replaces)


def _file_reasons(candidate: Candidate) -> list[str]:
    reasons = []
    lowered = candidate.path.lower()
    name = os.path.basename(lowered)
    ext = extension(name)
    if ext in DANGEROUS_EXTENSIONS or name.endswith(".iso.exe"):
        reasons.append(f"Dangerous file type .{ext}: an executable or script is never imported.")
    if any(marker.lower() in lowered for marker in WORKING_MARKERS) or \
            name.endswith(PARTIAL_SUFFIXES):
        reasons.append("Still being downloaded or unpacked.")
    if candidate.size == 0:
        reasons.append("The file is empty (0 bytes).")
    return reasons


def _is_sample(candidate: Candidate) -> bool:
    name = os.path.basename(candidate.path.lower())
    if candidate.runtime_seconds is not None and 0 < candidate.runtime_seconds < SAMPLE_SECONDS:
        return True
    named = "sample" in name.replace("-", ".").replace("_", ".").split(".") or \
        os.sep + "sample" + os.sep in candidate.path.lower()
    return named and candidate.size < SAMPLE_BYTES


def _identity_reasons(candidate: Candidate) -> list[str]:
    if not candidate.release.title:
        return ["The name says no title: identify it by hand."]
    return []


def _upgrade_problem(quality: Quality, existing: Existing, profile: QualityProfile) -> str:
    """Why `quality` may not replace the library's file, or "" when it may."""
    have = existing.quality
    if have.name in profile.allowed and quality.name in profile.allowed:
        better = profile.order(quality) > profile.order(have)
        proper_only = quality.name == have.name and quality.revision > have.revision
    else:
        better, proper_only = quality > have, False
    if not better:
        return f"Not an upgrade: the library has it in {have}, this is {quality}."
    if proper_only and profile.prefer_proper:
        return ""   # a PROPER or REPACK of the same quality replaces it, cutoff or not
    if not profile.upgrades:
        return f"Upgrades are off in the quality profile {profile.name!r} (the library has {have})."
    if profile.met_by(have):
        return f"The library's {have} already meets the cutoff ({profile.cutoff})."
    return ""

