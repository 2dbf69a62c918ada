"""The README is a front page and the docs hold the rest: every relative link in them leads to
a file that exists, and every page of docs/ is linked from the README."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_leads_somewhere():
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in pages()
              for target in LINK.findall(page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert broken == []


def test_the_readme_leads_to_every_page_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    linked = {Path(target).name for target in LINK.findall(readme)}
    assert {page.name for page in pages()[1:]} <= linked
    assert len(readme.encode()) <= 12 * 1024


def test_the_command_reference_is_the_commands_own():
    from cli import SECTIONS, main
    from cli_reference import reference

    written = (ROOT / "docs" / "cli.md").read_text()
    assert written == reference(main, SECTIONS), "run: .venv/bin/cairn reference > docs/cli.md"
    for command in ("cairn profile add", "cairn backup run", "cairn restore", "cairn library dupes",
                    "cairn import scan", "cairn run"):
        assert f"### `{command}`" in written, command
