"""Where an imported movie goes in the library: a naming template with tokens, filled with
the release's values made safe for every filesystem a library may sit on (FAT and SMB shares
included).

Default: `{Title} ({Year})/{Title} ({Year}) [{Quality}].{ext}`. A token with no value is
left out with the brackets and separators around it, so a movie without a year is
`Heat/Heat [Bluray-1080p].mkv`, not `Heat ()/Heat () [...]`.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_TEMPLATE = "{Title} ({Year})/{Title} ({Year}) [{Quality}].{ext}"
TOKENS = ("Title", "Year", "Quality", "Edition", "Group", "Resolution", "ext", "TitleThe")
MAX_COMPONENT_BYTES = 255
MAX_TEMPLATE = 300
_TOKEN = re.compile(r"\{([^{}]*)\}")
# What Windows, FAT and SMB refuse, and what would split or hide a path.
_REPLACE = {":": " -", "/": "-", "\\": "-", "*": "-", "?": "", '"': "'", "<": "", ">": "",
            "|": "-"}
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")


class TemplateError(ValueError):
    """A naming template Cairn cannot use, with a message for people."""


def check(template: str) -> str:
    """The template, tidied, or TemplateError saying what is wrong with it."""
    template = (template or "").strip()
    if not template:
        raise TemplateError("Write a naming template, such as " + DEFAULT_TEMPLATE + ".")
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"A naming template is at most {MAX_TEMPLATE} characters.")
    if template.startswith("/") or any(part in ("", ".", "..") for part in template.split("/")):
        raise TemplateError("A template names a path inside the library: no leading /, no "
                            "empty, '.' or '..' parts.")
    if template.count("{") != template.count("}") or re.search(r"\{[^}]*\{|\}[^{]*\}", template):
        raise TemplateError("Every { needs its }: tokens are written like {Title}.")
    unknown = [t for t in _TOKEN.findall(template) if t not in TOKENS]
    if unknown:
        raise TemplateError(f"Unknown token {{{unknown[0]}}}; use " +
                            ", ".join("{" + t + "}" for t in TOKENS) + ".")
    if not template.endswith(".{ext}"):
        raise TemplateError("End the template with .{ext}, so the file keeps its extension.")
    if "{Title}" not in template and "{TitleThe}" not in template:
        raise TemplateError("Put {Title} in the template, or files of different movies collide.")
    return template


def safe(value: str) -> str:
    """A value with characters that paths cannot hold replaced, control characters removed."""
    value = unicodedata.normalize("NFC", value)
    value = "".join(_REPLACE.get(c, c) for c in value if unicodedata.category(c)[0] != "C")
    return re.sub(r"-{2,}", "-", re.sub(r"\s+", " ", value)).strip()


def _title_the(title: str) -> str:
    match = re.match(r"(?i)^(the|a|an)\s+(.+)$", title)
    return f"{match.group(2)}, {match.group(1)}" if match else title


def render(template: str, values: dict[str, object]) -> str:
    """The library-relative path of a file named by `template` with `values`."""
    values = {**values, "TitleThe": _title_the(str(values.get("Title") or ""))}

    def fill(match: re.Match) -> str:
        value = values.get(match.group(1))
        return safe(str(value)) if value not in (None, "") else ""

    *folders, file = check(template).split("/")
    stem = _clean(_TOKEN.sub(fill, file.removesuffix(".{ext}")))
    ext = safe(str(values.get("ext") or "")).strip(" .").lower() or "bin"
    return "/".join([*(_fit(_clean(_TOKEN.sub(fill, part))) for part in folders),
                     _fit(f"{stem}.{ext}")])


def _clean(text: str) -> str:
    """A filled-in path component: no empty brackets left by missing values, no doubled
    spaces, no leading or trailing dots, spaces or dashes (so never hidden, never '..')."""
    text = _EMPTY_BRACKETS.sub("", text)
    text = re.sub(r"\s+", " ", text).replace(" .", ".").strip(" .-")
    return text or "_"


def _fit(component: str) -> str:
    """Shorten a path component to 255 bytes, keeping its extension."""
    if len(component.encode()) <= MAX_COMPONENT_BYTES:
        return component
    stem, dot, ext = component.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = component, ""
    room = MAX_COMPONENT_BYTES - len(ext.encode()) - (1 if ext else 0)
    short = stem.encode()[:room].decode("utf-8", "ignore").rstrip(" .")
    return f"{short}.{ext}" if ext else short
