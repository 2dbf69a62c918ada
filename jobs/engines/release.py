"""What a downloaded movie file is, from its name: title, year, edition and release group
(parsed by PTT, the `parsett` package), and its quality on Radarr's ladder (our own
classifier: source × resolution, with PROPER/REPACK revisions).

PTT was measured against guessit on the movie cases of guessit's own cross-parser fixtures:
the same title accuracy (277 of 305 before our clean-up below), and about ten times the speed
(900 names/s against 82 here), so PTT it is. Its title is then tidied: language and 3D tags
left at its end are dropped, a title cut short before the year is given back its words, and
a name that is only a year ("2012") is the title, not the year.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import total_ordering

from PTT import Parser, add_defaults

# PTT's own parser, less what only series and adult releases need: fewer handlers to try on
# every name, and "Star Wars Episode IV ..." keeps its episode in the title.
NOT_FOR_MOVIES = {"episodes", "seasons", "episode_code", "volumes", "adult"}
_parser = Parser()
add_defaults(_parser)
_parser.handlers = [h for h in _parser.handlers
                    if getattr(h, "handler_name", "") not in NOT_FOR_MOVIES]

# Radarr's order, worst to best; WEB-DL and WEBRip rank equal ("WEB").
LADDER = ("Unknown", "WORKPRINT", "CAM", "TELESYNC", "TELECINE", "REGIONAL", "DVDSCR", "SDTV",
          "DVD", "DVD-R", "WEB 480p", "Bluray-480p", "Bluray-576p", "HDTV-720p", "WEB 720p",
          "Bluray-720p", "HDTV-1080p", "WEB 1080p", "Bluray-1080p", "Remux-1080p", "HDTV-2160p",
          "WEB 2160p", "Bluray-2160p", "Remux-2160p", "BR-DISK", "Raw-HD")
RANK = {name: i for i, name in enumerate(LADDER)}

VIDEO_EXTENSIONS = {"mkv", "mp4", "avi", "m4v", "mov", "wmv", "ts", "m2ts", "mpg", "mpeg", "iso",
                    "webm", "divx", "vob", "flv", "ogm", "3gp", "mk3d"}


@total_ordering
@dataclass(frozen=True)
class Quality:
    name: str = "Unknown"
    revision: int = 1        # 2 for a PROPER or REPACK, 3 for a second one...

    @property
    def rank(self) -> int:
        return RANK[self.name]

    def __lt__(self, other: Quality) -> bool:
        return (self.rank, self.revision) < (other.rank, other.revision)

    def __str__(self) -> str:
        return self.name + (f" (v{self.revision})" if self.revision > 1 else "")


# --- the classifier --------------------------------------------------------------------------
# Tokens are matched between separators (start, end, space . _ - [ ] ( ) +), case ignored.
_B = r"(?<![a-z0-9])"
_E = r"(?![a-z0-9])"


def _token(*alternatives: str) -> re.Pattern:
    return re.compile(_B + "(?:" + "|".join(alternatives) + ")" + _E, re.IGNORECASE)


SOURCES = [   # first match wins: the more specific before the more general
    ("rawhd", _token(r"raw[ ._-]?hd", r"1080i[ ._-]hdtv")),
    ("brdisk", _token(r"br[ ._-]?disk", r"bd[ ._-]?(?:25|50|66|100)", r"bdiso",
                      r"complete[ ._-](?:uhd[ ._-])?blu[ ._-]?ray", r"(?:avc|hevc)[ ._-]remux[ ._-]disc")),
    ("remux", _token(r"remux", r"bdremux", r"bd[ ._-]?remux")),
    ("workprint", _token(r"workprint", r"wp")),
    ("cam", _token(r"cam", r"camrip", r"cam[ ._-]?rip", r"hd[ ._-]?cam", r"new[ ._-]?cam")),
    ("telesync", _token(r"ts", r"telesync", r"hd[ ._-]?ts", r"ts[ ._-]?rip", r"pdvd",
                        r"predvd(?:rip)?")),
    ("telecine", _token(r"tc", r"telecine", r"hd[ ._-]?tc")),
    ("dvdscr", _token(r"dvd[ ._-]?scr", r"screener", r"scr", r"bd[ ._-]?scr", r"dvdscreener")),
    ("regional", _token(r"r5", r"r6", r"regional")),
    ("dvdr", _token(r"dvd[ ._-]?r", r"dvd[ ._-]?(?:5|9)", r"(?:pal|ntsc)[ ._-]dvd(?:r)?",
                    r"complete[ ._-](?:pal|ntsc)[ ._-]dvdr?", r"iso", r"video_ts")),
    ("bluray", _token(r"blu[ ._-]?ray", r"m?bluray", r"bd[ ._-]?rip", r"br[ ._-]?rip", r"bdr",
                      r"bd", r"uhd[ ._-]?bd", r"hd[ ._-]?dvd(?:rip)?", r"bdmux", r"brrip")),
    ("web", _token(r"web[ ._-]?dl", r"web[ ._-]?rip", r"web[ ._-]?hd", r"web", r"webcap",
                   r"web[ ._-]?dlrip", r"amzn", r"nf", r"dsnp", r"hmax", r"atvp", r"itunes(?:hd)?",
                   r"ip", r"dl[ ._-]?mux", r"hd[ ._-]?rip")),
    ("hdtv", _token(r"hdtv", r"hd[ ._-]?tv", r"uhdtv", r"hdtvrip")),
    ("sdtv", _token(r"sdtv", r"pdtv", r"dsr", r"dsrip", r"tvrip", r"dvb(?:rip)?", r"satrip",
                    r"dth(?:rip)?", r"tv[ ._-]?rip", r"ws[ ._-]?pdtv")),
    ("dvd", _token(r"dvd[ ._-]?rip", r"dvd", r"xvid[ ._-]?dvd", r"ntsc", r"pal", r"dvd[ ._-]?mux",
                   r"r1", r"r2")),
]
RESOLUTIONS = [
    (2160, _token(r"2160[pi]?", r"4k", r"uhd", r"3840x2160", r"4096x2160")),
    (1080, _token(r"1080[pi]", r"1920x1080", r"fhd", r"1080")),
    (720, _token(r"720[pi]", r"1280x720", r"720")),
    (576, _token(r"576[pi]", r"576")),
    (480, _token(r"480[pi]", r"640x480", r"848x480", r"480")),
]
REVISION = _token(r"proper", r"repack", r"rerip", r"v2")
REAL = re.compile(r"(?<![a-z0-9])REAL(?![a-z0-9])")   # case matters: "Real Steel" is a title


def classify(name: str) -> Quality:
    """The quality a release name says, on Radarr's ladder."""
    text = _strip_extension(name)
    source = next((kind for kind, pattern in SOURCES if pattern.search(text)), None)
    resolution = next((r for r, pattern in RESOLUTIONS if pattern.search(text)), None)
    revision = 1 + len(REVISION.findall(text)) + len(REAL.findall(text))
    return Quality(_ladder(source, resolution), revision)


def _ladder(source: str | None, resolution: int | None) -> str:
    fixed = {"rawhd": "Raw-HD", "brdisk": "BR-DISK", "workprint": "WORKPRINT", "cam": "CAM",
             "telesync": "TELESYNC", "telecine": "TELECINE", "dvdscr": "DVDSCR",
             "regional": "REGIONAL", "dvdr": "DVD-R", "sdtv": "SDTV"}
    if source in fixed:
        return fixed[source]
    if source == "remux":
        return "Remux-2160p" if resolution == 2160 else "Remux-1080p"
    if source == "bluray":
        # A Blu-ray rip that names no resolution is most often a 720p or smaller encode.
        return f"Bluray-{resolution or 720}p" if resolution != 2160 else "Bluray-2160p"
    if source == "web":
        return f"WEB {resolution if resolution in (720, 1080, 2160) else 480}p"
    if source == "hdtv":
        return f"HDTV-{resolution}p" if resolution in (720, 1080, 2160) else "SDTV"
    if source == "dvd":
        return "DVD"
    if resolution in (720, 1080, 2160):   # only a resolution: most such files are web releases
        return f"WEB {resolution}p"
    if resolution in (480, 576):
        return "SDTV"
    return "Unknown"


# --- the name --------------------------------------------------------------------------------

@dataclass
class Release:
    title: str
    year: int | None
    quality: Quality
    edition: str = ""
    group: str = ""
    languages: list[str] = field(default_factory=list)

    @property
    def identified(self) -> bool:
        return bool(self.title)


_TRAILING_TAGS = re.compile(
    r"(?:[ ._-]+(?:german|french|truefrench|vostfr|vf|vff|multi|dl|dubbed|subbed|ita|spanish|"
    r"castellano|latino|english|eng|3d|hsbs|hou|sbs|ou|complete|uncut|unrated|"
    r"extended|remastered|limited|internal|ld|md))+$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[._\s]+")


def extension(path: str) -> str:
    """A file's extension, lower case, without the dot ("" when it has none)."""
    name = os.path.basename(path)
    return name.rpartition(".")[2].lower() if "." in name else ""


def _strip_extension(name: str) -> str:
    base, dot, ext = name.rpartition(".")
    return base if dot and ext.lower() in VIDEO_EXTENSIONS else name


def parse(name: str) -> Release:
    """A release from a file or folder name (no path)."""
    text = _strip_extension(name.strip())
    found = _parser.parse(text)
    title = (found.get("title") or "").strip()
    year = found.get("year")
    title = _longer_title(text, title, year)
    title = _TRAILING_TAGS.sub("", title).strip(" .-_")
    if not title and year:   # "2012.720p.BluRay": the year is the title
        title, year = str(year), None
    edition = found.get("edition") or ""
    return Release(title=_tidy(title), year=int(year) if year else None, quality=classify(text),
                   edition=str(edition), group=str(found.get("group") or ""),
                   languages=list(found.get("languages") or []))


def _longer_title(text: str, title: str, year: int | None) -> str:
    """PTT stops at words like "Episode 1"; the words before the year are the title when they
    start with PTT's title and hold nothing but words."""
    if not year or not title:
        return title
    match = re.search(rf"(?<![0-9])\(?{year}\)?(?![0-9])", text)
    if not match:
        return title
    before = _SEPARATORS.sub(" ", text[:match.start()]).strip(" -([")
    head = _SEPARATORS.sub(" ", title).strip()
    if before.lower().startswith(head.lower()) and len(before) > len(head) \
            and not re.search(r"[\[\](){}]", before) and classify(before).name == "Unknown":
        return before
    return title


def _tidy(title: str) -> str:
    return _SEPARATORS.sub(" ", title).strip()


def parse_path(path: str) -> Release:
    """The release a file in an inbox is: from its own name, or from its folder's when the
    file name says less (an obfuscated `abc123.mkv` inside `Movie.2019.1080p.WEB-DL-GRP/`)."""
    folder, name = os.path.split(path.rstrip("/"))
    own = parse(name)
    if not folder:
        return own
    parent = parse(os.path.basename(folder))
    if parent.year and not own.year or (own.quality.name == "Unknown"
                                        and parent.quality.name != "Unknown"
                                        and parent.title):
        return Release(parent.title, parent.year, max(own.quality, parent.quality),
                       parent.edition, parent.group or own.group, parent.languages)
    return own
