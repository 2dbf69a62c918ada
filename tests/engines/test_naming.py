"""Library paths from a naming template: tokens filled, unsafe characters replaced, empty
tokens left out with their brackets, long names shortened, bad templates refused."""

import re

import pytest

from jobs.engines import naming

VALUES = {"Title": "Heat", "Year": 1995, "Quality": "Bluray-1080p", "ext": "mkv",
          "Edition": "", "Group": "AMIABLE"}


def test_the_default_template():
    assert naming.render(naming.DEFAULT_TEMPLATE, VALUES) == "Heat (1995)/Heat (1995) [Bluray-1080p].mkv"


def test_a_missing_year_takes_its_brackets_with_it():
    assert naming.render(naming.DEFAULT_TEMPLATE, {**VALUES, "Year": None}) == "Heat/Heat [Bluray-1080p].mkv"


def test_characters_that_paths_cannot_hold_are_replaced():
    title = 'Mission: Impossible / Ghost "Protocol"? <x>|*'
    path = naming.render("{Title} ({Year})/{Title}.{ext}", {**VALUES, "Title": title})
    title = "Mission - Impossible - Ghost 'Protocol' x"
    assert path == f"{title}- (1995)/{title}.mkv"


def test_no_name_becomes_hidden_or_a_parent_folder():
    assert naming.render("{Title}/{Title}.{ext}", {**VALUES, "Title": "..."}) == "_/_.mkv"
    assert naming.render("{Title}/{Title}.{ext}", {**VALUES, "Title": ".hidden"}) == "hidden/hidden.mkv"


def test_a_long_title_is_cut_to_255_bytes_keeping_the_extension():
    path = naming.render("{Title}.{ext}", {**VALUES, "Title": "Ä" * 300})
    assert path.endswith(".mkv") and len(path.encode()) <= 255


def test_title_the_moves_the_article():
    assert naming.render("{TitleThe}.{ext}", {**VALUES, "Title": "The Matrix"}) == "Matrix, The.mkv"


@pytest.mark.parametrize("template, says", [
    ("", "Write a naming template"), ("/abs/{Title}.{ext}", "no leading /"),
    ("{Title}/../{Title}.{ext}", "'..'"), ("{Title}.mkv", "End the template with .{ext}"),
    ("{Titel}.{ext}", "Unknown token {Titel}"), ("{Title.{ext}", "Every { needs its }"),
    ("{Year}.{ext}", "Put {Title}"), ("x" * 400 + "{Title}.{ext}", "at most"),
])
def test_bad_templates_are_refused_with_the_reason(template, says):
    with pytest.raises(naming.TemplateError, match=re.escape(says)):
        naming.check(template)
