"""The house words for counts and sentences, and the order names are listed in."""

from jobs.engines.humane import format_count, natural_key, sentence


def test_counts_say_their_noun_once_and_right():
    assert format_count(1, "entry") == "1 entry"
    assert format_count(5, "entry") == "5 entries"
    assert format_count(2, "copy") == "2 copies"
    assert format_count(3, "day") == "3 days"
    assert format_count(12_408, "file") == "12,408 files"
    assert format_count(2, "child", "children") == "2 children"


def test_a_sentence_ends_in_one_full_stop():
    assert sentence("Keep the last 3") == "Keep the last 3."
    assert sentence("Every day at 02:00.") == "Every day at 02:00."
    assert sentence("Really?") == "Really?"
    assert sentence("") == ""


def test_names_sort_by_their_numbers_and_letters_not_their_bytes():
    names = ["photo 10", "photo 2", "Photo 1", "photo", "b", "Émile", "a 007", "a 7", "a 10"]
    assert sorted(names, key=natural_key) == [
        "a 007", "a 7", "a 10", "b", "Émile", "photo", "Photo 1", "photo 2", "photo 10"]
    # Not UTF-8 names still sort (and stay apart from every other name).
    assert natural_key(b"caf\xe9") != natural_key(b"cafe")
