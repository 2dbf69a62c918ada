"""rsync exclude patterns: validation, a matcher for the scanner, and escaping for unit rules.

The scanner must count what rsync will copy, so user excludes are matched here with rsync's
own rules (see rsync(1), "PATTERN MATCHING RULES"): a pattern starting with `/` is anchored
at the source folder; one containing `/` or `**` matches the end of the path at a folder
boundary; any other matches the name alone; a trailing `/` matches only folders; `dir/***`
matches the folder and all inside it. `*` and `?` stop at `/`, `**` does not; `[...]` is a
class; a backslash escapes a wildcard only when the pattern holds one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PATTERN = 4096
WILDCARDS = "*?["


class PatternError(ValueError):
    """An exclude pattern rsync would misread or that Cairn cannot honour."""


def validate(pattern: str) -> str:
    """Return the pattern if rsync reads it as one plain exclude, else raise PatternError."""
    if not pattern.strip():
        raise PatternError("An exclude pattern cannot be empty.")
    if "\n" in pattern or "\r" in pattern or "\0" in pattern:
        raise PatternError("An exclude pattern must fit on one line.")
    if len(pattern.encode("utf-8", "surrogateescape")) > MAX_PATTERN:
        raise PatternError(f"An exclude pattern may be at most {MAX_PATTERN} bytes long.")
    if pattern == "!":
        raise PatternError("'!' would clear rsync's filter list; it is not a pattern.")
    _translate(pattern)  # raises PatternError on an unclosed [ class
    return pattern


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    dirs_only: bool
    whole_path: bool

    def matches(self, rel_path: str, is_dir: bool) -> bool:
        """`rel_path` is relative to the source folder, without a leading slash."""
        if self.dirs_only and not is_dir:
            return False
        subject = rel_path if self.whole_path else rel_path.rpartition("/")[2]
        return self.regex.search(subject) is not None


def compile_pattern(pattern: str) -> Pattern:
    validate(pattern)
    text = pattern
    dirs_only = False
    if text.endswith("/***"):
        # `dir/***`: the folder itself and everything inside it.
        body, regex_tail = text[:-4], r"(/.*)?"
    else:
        if text.endswith("/") and len(text) > 1:
            dirs_only, text = True, text[:-1]
        body, regex_tail = text, ""
    anchored = body.startswith("/")
    whole_path = anchored or "/" in body or "**" in body
    if not anchored and body.startswith("**/"):
        # rsync lets a leading `**/` match no folder at all: `**/secret` matches `secret`.
        core = "(?:.*/)?" + _translate(body[3:]) + regex_tail
    else:
        core = _translate(body.lstrip("/") if anchored else body) + regex_tail
    if anchored:
        regex = re.compile(f"^{core}$", re.DOTALL)
    elif whole_path:
        regex = re.compile(f"(?:^|/){core}$", re.DOTALL)
    else:
        regex = re.compile(f"^{core}$", re.DOTALL)
    return Pattern(pattern, regex, dirs_only, whole_path)


def _translate(glob: str) -> str:
    escapes = any(ch in glob for ch in WILDCARDS)
    out: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "\\" and escapes and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
            continue
        if ch == "*":
            if glob.startswith("**", i):
                out.append(".*")
                i += 2
                while i < len(glob) and glob[i] == "*":
                    i += 1
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end, cls = _char_class(glob, i)
            out.append(cls)
            i = end
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _char_class(glob: str, start: int) -> tuple[int, str]:
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    body_start = i
    if i < len(glob) and glob[i] == "]":
        i += 1  # a leading ] is a member, not the end
    while i < len(glob) and glob[i] != "]":
        i += 1
    if i >= len(glob):
        raise PatternError(f"The pattern {glob!r} opens a [ class that it never closes.")
    members = glob[body_start:i].replace("\\", "\\\\").replace("[", "\\[")
    return i + 1, f"[{'^' if negate else ''}{members}]"


class Excludes:
    """The compiled user excludes of one profile, matched against source-relative paths."""

    def __init__(self, patterns: list[str] | tuple[str, ...]) -> None:
        self.patterns = [compile_pattern(p) for p in patterns]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, rel_path: str, is_dir: bool) -> bool:
        return self.first_match(rel_path, is_dir) is not None

    def first_match(self, rel_path: str, is_dir: bool) -> int | None:
        """The index of the pattern that excludes `rel_path` (rsync: the first that matches)."""
        for index, pattern in enumerate(self.patterns):
            if pattern.matches(rel_path, is_dir):
                return index
        return None


def escape(path: str, suffix: str = "") -> str:
    """An anchored rsync pattern for `path` (relative, may be "") followed by `suffix`.

    rsync reads backslashes as escapes only in a pattern that holds a wildcard, so names are
    escaped exactly when the finished pattern holds one (from the name or from the suffix).
    """
    literal = "/" + path if path else ""
    if any(ch in literal + suffix for ch in WILDCARDS):
        literal = re.sub(r"([\\*?\[])", r"\\\1", literal)
    return literal + suffix
