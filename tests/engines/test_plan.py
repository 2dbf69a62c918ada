"""Units: a dominant folder is split, pieces are balanced, and the units cover every file
exactly once — checked by asking rsync itself what each unit's rules select."""

import os
import random
import subprocess

import pytest

from jobs.engines import plan as planner
from jobs.engines.scan import ScanCallbacks, scan
from tests.helpers.trees import awkward_tree, write


def scanned(sources):
    folders = [{} for _ in sources]
    roots = []
    for i, source in enumerate(sources):
        roots.append(scan(str(source), callbacks=ScanCallbacks(
            on_dir=lambda t, i=i: folders[i].update({t.path: t}))))

    def children_of(index, path):
        return [t for p, t in folders[index].items()
                if p and p.rpartition("/")[0] == path and "/" not in p[len(path) + 1 if path else 0:]]
    return roots, children_of


def selected_by(source, rules, excludes=()):
    args = ["rsync", "-a", "-n", "--out-format=%n"] + [f"--exclude={p}" for p in excludes]
    args += [f"--include={r[2:]}" if r[0] == "+" else f"--exclude={r[2:]}" for r in rules]
    out = subprocess.run(args + ["--", f"{source}/", "/nonexistent-dest/"], check=True,
                         capture_output=True, env={"LC_ALL": "C", "PATH": os.defpath}).stdout
    return {line for line in out.split(b"\n") if line and not line.endswith(b"/")}


def everything(source):
    return selected_by(source, [])


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    monkeypatch.setattr(planner, "MIN_UNIT_COST", 1)


def test_a_dominant_folder_is_split_into_its_children_and_its_loose_files(tmp_path):
    home = tmp_path / "home"
    for i in range(6):
        write(home / "Videos" / f"season{i}" / "episode.mkv", os.urandom(300_000))
    write(home / "Videos" / "loose.mkv", os.urandom(100_000))
    write(home / "notes.txt", "x")
    roots, children_of = scanned([home])
    the_plan = planner.plan(roots, children_of, concurrency=3)
    labels = [u.label for u in the_plan.units]
    assert len(the_plan.units) >= 3
    assert any("rest of Videos" in label for label in labels)
    assert "Videos" in the_plan.sources[0].split
    biggest = max(u.cost for u in the_plan.units)
    assert biggest < planner.cost(roots[0].files, roots[0].bytes) / 2


def test_units_cover_every_file_exactly_once(tmp_path):
    source = awkward_tree(tmp_path / "src")
    for i in range(8):
        write(source / "photos" / f"album{i}" / "img.jpg", os.urandom(40_000 * (i + 1)))
    roots, children_of = scanned([source])
    the_plan = planner.plan(roots, children_of, concurrency=4)
    assert len(the_plan.units) > 2
    seen = []
    for unit in the_plan.units:
        seen.extend(selected_by(source, unit.rules))
    assert sorted(seen) == sorted(everything(source))


@pytest.mark.parametrize("seed", range(6))
def test_random_trees_are_covered_exactly_once(tmp_path, seed):
    rng = random.Random(seed)
    source = tmp_path / "src"
    folders = [source]
    for n in range(60):
        parent = rng.choice(folders)
        if rng.random() < 0.4:
            child = parent / f"d{n}{rng.choice(['', ' x', '[1]', '*'])}"
            child.mkdir(parents=True, exist_ok=True)
            folders.append(child)
        else:
            write(parent / f"f{n}", os.urandom(rng.choice([10, 5000, 80_000])))
    excludes = ["*.skip"] if seed % 2 else []
    roots, children_of = scanned([source])
    the_plan = planner.plan(roots, children_of, concurrency=rng.randint(1, 6))
    seen = []
    for unit in the_plan.units:
        seen.extend(selected_by(source, unit.rules, excludes))
    assert sorted(seen) == sorted(selected_by(source, [], excludes))


def test_a_small_tree_is_one_unit_without_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(planner, "MIN_UNIT_COST", 10**12)
    write(tmp_path / "src" / "a" / "f", "x")
    roots, children_of = scanned([tmp_path / "src"])
    the_plan = planner.plan(roots, children_of, concurrency=4)
    assert [u.rules for u in the_plan.units] == [[]]


def test_a_folder_of_many_small_subfolders_is_spread_over_the_workers(tmp_path):
    docs = tmp_path / "home" / "Documents"
    for i in range(60):
        for j in range(5):
            write(docs / f"letters-{i:02d}" / f"{j}.txt", "x" * 100)
    write(tmp_path / "home" / "todo.txt", "x")
    roots, children_of = scanned([tmp_path / "home"])
    the_plan = planner.plan(roots, children_of, concurrency=4, min_unit=1)
    assert len(the_plan.units) >= 4
    biggest = max(u.files for u in the_plan.units)
    assert biggest <= roots[0].files / 3
    seen = []
    for unit in the_plan.units:
        seen.extend(selected_by(tmp_path / "home", unit.rules))
    assert sorted(seen) == sorted(everything(tmp_path / "home"))
