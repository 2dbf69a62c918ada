"""Exclude patterns: Cairn's matcher agrees with rsync's own, and bad patterns are refused."""

import os
import subprocess

import pytest

from jobs.engines.filters import Excludes, PatternError, escape, validate
from tests.helpers.trees import write

PATTERNS = ["*.tmp", "cache/", "/top-only.txt", "node_modules", "photos/**/thumbs", "a?c",
            "[0-9]*.log", "build/***", "deep/*/x.txt", "**/secret"]


def rsync_copies(source, patterns):
    args = ["rsync", "-a", "-n", "--out-format=%n"] + [f"--exclude={p}" for p in patterns]
    out = subprocess.run(args + ["--", f"{source}/", "/nonexistent-dest/"], check=True,
                         capture_output=True, env={"LC_ALL": "C", "PATH": os.defpath}).stdout
    return {line.rstrip("/") for line in out.decode().splitlines() if line not in ("./", "")}


def cairn_copies(source, patterns):
    excludes = Excludes(patterns)
    kept = set()
    for folder, dirs, files in os.walk(source):
        rel_folder = os.path.relpath(folder, source)
        rel_folder = "" if rel_folder == "." else rel_folder
        for name in list(dirs):
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if excludes.excluded(rel, True):
                dirs.remove(name)
            else:
                kept.add(rel)
        for name in files:
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if not excludes.excluded(rel, False):
                kept.add(rel)
    return kept


@pytest.fixture
def tree(tmp_path):
    for rel in ["keep.txt", "x.tmp", "sub/y.tmp", "cache/c.bin", "sub/cache/c.bin", "cache.txt",
                "top-only.txt", "sub/top-only.txt", "node_modules/m.js", "a/node_modules",
                "photos/2024/thumbs", "photos/thumbs", "photos/2024/x/thumbs/t.jpg", "abc", "sub/abc",
                "abcd", "1.log", "x1.log", "build/out.o", "sub/build/out.o", "deep/one/x.txt",
                "deep/one/two/x.txt", "deep/x.txt", "secret", "a/b/secret"]:
        write(tmp_path / "src" / rel, rel)
    return tmp_path / "src"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_leaves_out_what_rsync_leaves_out(tree, pattern):
    assert cairn_copies(tree, [pattern]) == rsync_copies(tree, [pattern])


def test_all_patterns_together_agree_with_rsync(tree):
    assert cairn_copies(tree, PATTERNS) == rsync_copies(tree, PATTERNS)


@pytest.mark.parametrize("pattern, message", [
    ("", "cannot be empty"), ("   ", "cannot be empty"), ("a\nb", "one line"),
    ("[abc", "never closes"), ("!", "clear"), ("x" * 5000, "at most 4096 bytes"),
])
def test_bad_patterns_are_refused_with_a_reason(pattern, message):
    with pytest.raises(PatternError, match=message):
        validate(pattern)


@pytest.mark.parametrize("name", ["plain", "a[1]", "star*", "q?", "back\\slash", "mixed[\\]*"])
def test_escaped_names_match_only_themselves_in_rsync(tmp_path, name):
    write(tmp_path / "src" / name / "f", "x")
    write(tmp_path / "src" / "other" / "f", "x")
    write(tmp_path / "src" / "a1" / "f", "x")
    args = ["rsync", "-a", "-n", "--out-format=%n", f"--include={escape(name, '/***')}",
            "--exclude=*", "--", f"{tmp_path}/src/", "/nonexistent-dest/"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.splitlines()
    assert sorted(out) == sorted(["./", f"{name}/", f"{name}/f"])
