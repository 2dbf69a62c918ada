"""How fast release names are identified: Cairn's parser (PTT less its series handlers, plus
the quality classifier) against guessit, on the same names in one run. Target (issue 7):
1,000 names a second or more.

The names: the 210 of tests/engines/data/releases.tsv and the movie cases of guessit's
cross-parser fixtures, each also with its words in another order of tags and another group
(names a parser has not seen, so no cache helps), about 3,000 in all.
"""

from __future__ import annotations

import random
import time

import guessit

from jobs.engines import release
from tests.helpers.releases import cross_parser_cases, own_cases

GROUPS = ["SPARKS", "FLUX", "NTb", "RARBG", "YTS", "AMIABLE", "EVO", "playWEB", "CMRG", "SiGMA"]


def names() -> list[str]:
    base = [case[0] for case in own_cases()] + [case[0] for case in cross_parser_cases()]
    rng = random.Random(7)
    out = list(base)
    for name in base * 5:
        stem = name.rsplit("-", 1)[0]
        tag = rng.choice(["PROPER.", "REPACK.", ""])
        out.append(f"{stem}.{tag}x264-{rng.choice(GROUPS)}{rng.randint(1, 999)}")
    return out


def rate(parse, sample: list[str]) -> float:
    started = time.perf_counter()
    for name in sample:
        parse(name)
    return len(sample) / (time.perf_counter() - started)


def test_parser_speed():
    sample = names()
    release.parse(sample[0])            # import and compile before timing
    cairn = max(rate(release.parse, sample) for _ in range(3))
    other = rate(lambda n: guessit.guessit(n, {"type": "movie"}), sample[:600])
    print(f"\n{len(sample):,} names: Cairn {cairn:,.0f} names/s (target 1,000 or more); "
          f"guessit {other:,.0f} names/s; Cairn ÷ guessit {cairn / other:.1f}×")
