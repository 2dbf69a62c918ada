"""Release names to test the parser on: our own 210 with their expected quality, and the movie
cases of guessit's cross-parser fixtures, which carry title and year."""

import json
from pathlib import Path

import guessit

DATA = Path(__file__).parents[1] / "engines" / "data" / "releases.tsv"
CROSS_PARSER = Path(guessit.__file__).parent / "test" / "cross_parser"


def own_cases() -> list[tuple[str, str, str, str]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


def cross_parser_cases() -> list[tuple[str, str, str]]:
    cases = []
    for path in sorted(CROSS_PARSER.glob("*.json")):
        if path.name == "baseline.json":
            continue
        for entry in json.loads(path.read_text(encoding="utf-8"))["entries"]:
            expected = entry["expected"]
            if expected.get("type") == "movie":
                cases.append((entry["release_name"], expected["title"],
                              str(expected.get("year", ""))))
    return cases
