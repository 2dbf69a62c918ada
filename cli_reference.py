"""docs/cli.md, written from the commands themselves (`cairn reference`), so that it cannot
drift from them: tests/test_docs.py compares the two."""

from __future__ import annotations

import click

HEADER = """# The `cairn` command

Every command, as `cairn --help` and `cairn COMMAND --help` give it. Written by
`cairn reference > docs/cli.md`; a test fails when this page and the commands differ.
"""


def reference(group: click.Group, sections) -> str:
    """The page for `group`, its commands in `sections`: ((title, (name, ...)), ...)."""
    out = [HEADER]
    ctx = click.Context(group, info_name="cairn")
    for title, names in sections:
        out.append(f"## {title}\n")
        for name in names:
            command = group.get_command(ctx, name)
            if command is not None:
                out.extend(_command(command, ["cairn", name], ctx))
    return "\n".join(out).rstrip("\n") + "\n"


def _command(command: click.Command, words: list[str], parent: click.Context) -> list[str]:
    ctx = click.Context(command, info_name=words[-1], parent=parent)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"### `{' '.join(words)}`\n", f"```\n{' '.join(words)} {usage}\n```\n"]
    if command.help:
        lines.append(_plain(command.help) + "\n")
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if options:
        lines.append("| Option | What it does |")
        lines.append("|---|---|")
        for option in options:
            value = "" if option.is_flag or not option.metavar else f" {option.metavar}"
            names = ", ".join(f"`{o}{value}`" for o in option.opts)
            default = ""
            if option.show_default and option.default not in (None, "", False):
                default = f" (default: `{option.default}`)"
            lines.append(f"| {names} | {_plain(option.help or '')}{default} |")
        lines.append("")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            lines.extend(_command(command.get_command(ctx, name), [*words, name], ctx))
    return lines


def _plain(text: str) -> str:
    """Click's help text as one Markdown paragraph (its \\b blocks and line breaks joined)."""
    return " ".join(line.strip() for line in text.replace("\b", "").splitlines()
                    if line.strip()).replace("|", "\\|")
