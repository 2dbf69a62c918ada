"""Release names: title, year and quality from real-world-shaped names (our own 210, each with
its expected quality, and the movie cases of guessit's cross-parser fixtures, which carry
title and year), the quality ladder's order, and names that are odd or hostile."""

import re

import pytest

from jobs.engines import release
from jobs.engines.release import LADDER, Quality, classify, parse, parse_path
from tests.helpers.releases import cross_parser_cases, own_cases

TARGET = 0.95


def norm(title) -> str:
    """Titles compare without case or punctuation: "Mr. Robot" is "Mr Robot"."""
    return re.sub(r"\s+", " ", re.sub(r"\W+", " ", str(title).casefold())).strip()


def test_the_test_set_is_large_enough():
    assert len(own_cases()) >= 200 and len(cross_parser_cases()) >= 300


def test_names_are_identified_at_least_95_percent_of_the_time():
    wrong = []
    for name, title, year, quality in own_cases():
        found = parse(name)
        if (norm(found.title), str(found.year or ""), str(found.quality)) != (norm(title), year, quality):
            wrong.append(f"{name}: {found.title!r} {found.year} {found.quality}")
    own_wrong = len(wrong)
    for name, title, year in cross_parser_cases():
        found = parse(name)
        if norm(found.title) != norm(title) or (year and str(found.year) != year):
            wrong.append(f"{name}: {found.title!r} {found.year}")
    total = len(own_cases()) + len(cross_parser_cases())
    accuracy = 1 - len(wrong) / total
    print(f"\n{accuracy:.1%} of {total} names right; wrong:\n  " + "\n  ".join(wrong))
    assert accuracy >= TARGET
    assert own_wrong <= len(own_cases()) * (1 - TARGET)


class TestTheLadder:
    def test_it_is_radarrs_order(self):
        assert LADDER.index("Remux-1080p") < LADDER.index("HDTV-2160p") < LADDER.index("BR-DISK")
        assert LADDER.index("DVD-R") < LADDER.index("WEB 480p") < LADDER.index("Bluray-480p")
        assert LADDER[0] == "Unknown" and LADDER[-1] == "Raw-HD" and len(LADDER) == 26

    def test_web_dl_and_webrip_rank_equal(self):
        assert classify("X.2020.1080p.WEB-DL-G") == classify("X.2020.1080p.WEBRip-G")

    def test_a_proper_outranks_the_same_quality_and_nothing_better(self):
        proper = classify("X.2020.PROPER.720p.BluRay-G")
        assert classify("X.2020.720p.BluRay-G") < proper < classify("X.2020.1080p.WEB-G")
        assert classify("X.2020.REAL.PROPER.720p.BluRay-G").revision == 3

    @pytest.mark.parametrize("name, quality", [
        ("Movie.2020.HDTV.x264", "SDTV"), ("Movie.2020.720p.HDTV", "HDTV-720p"),
        ("Movie.2020.2160p.HDTV", "HDTV-2160p"), ("Movie.2020.WEBRip", "WEB 480p"),
        ("Movie.2020.BDRip", "Bluray-720p"), ("Movie.2020.480p.BDRip", "Bluray-480p"),
        ("Movie.2020.REMUX", "Remux-1080p"), ("Movie.2020.DVD9", "DVD-R"),
        ("Movie.2020.TC", "TELECINE"), ("Movie.2020.TS.x264", "TELESYNC"),
        ("Movie.2020.ts", "Unknown"),   # a transport-stream file named Movie.2020
        ("Movie.2020.mkv", "Unknown"), ("Movie.2020.ts.mkv", "TELESYNC"),
        ("Real.Steel.2011.720p.BluRay", "Bluray-720p"),   # "Real" is a title word, not REAL
    ])
    def test_sources_and_resolutions(self, name, quality):
        assert classify(name).name == quality

    def test_real_is_a_revision_only_in_capitals(self):
        assert classify("Real.Steel.2011.720p.BluRay").revision == 1


class TestOddNames:
    def test_a_name_with_no_year_still_has_a_title(self):
        found = parse("Some.Movie.1080p.WEB-DL.x264-GRP")
        assert (found.title, found.year, found.quality.name) == ("Some Movie", None, "WEB 1080p")

    def test_a_year_alone_is_the_title(self):
        assert (parse("2012.720p.BluRay.x264-XXL").title, parse("2012.720p.BluRay.x264-XXL").year) \
            == ("2012", None)

    def test_unicode_and_long_names_are_taken_as_they_are(self):
        long = "Ä" * 60 + ".2020.1080p.WEB-DL-GRP"   # 255 bytes in UTF-8, give or take
        found = parse(long)
        assert found.title == "Ä" * 60 and found.year == 2020
        assert parse("Amélie.2001.1080p.BluRay").title == "Amélie"

    @pytest.mark.parametrize("name", ["", ".", "...", "-", ".mkv", "\x00", "a" * 1000])
    def test_nothing_breaks_it(self, name):
        found = parse(name)
        assert isinstance(found.title, str) and isinstance(found.quality, Quality)

    def test_an_obfuscated_file_is_named_by_its_folder(self):
        found = parse_path("Movie.Title.2019.1080p.WEB-DL.DDP5.1.H.264-GRP/abc123xyz.mkv")
        assert (found.title, found.year, found.quality.name) == ("Movie Title", 2019, "WEB 1080p")

    def test_a_good_file_name_wins_over_its_folder(self):
        found = parse_path("downloads/Heat.1995.720p.BluRay.x264-GRP.mkv")
        assert (found.title, found.year, found.quality.name) == ("Heat", 1995, "Bluray-720p")


def test_series_handlers_are_left_out():
    names = {getattr(h, "handler_name", "") for h in release._parser.handlers}
    assert not names & release.NOT_FOR_MOVIES and "year" in names
