"""Import decisions: every rule evaluated and every reason kept; upgrades by the quality
profile's order and cutoff; PROPERs; identical content linked; space checked."""

import pytest

from jobs.engines.decide import Candidate, Existing, ProfileError, QualityProfile, decide
from jobs.engines.release import Quality, parse

GB = 1000**3
HD = QualityProfile("HD", allowed=("HDTV-720p", "WEB 720p", "Bluray-720p", "WEB 1080p",
                                   "Bluray-1080p"), cutoff="Bluray-1080p")


def candidate(name="Heat.1995.1080p.WEB-DL-GRP.mkv", size=4 * GB, path=None, **kw):
    return Candidate(path or f"/inbox/{name}", size, parse(name), **kw)


def test_a_good_file_is_imported():
    assert decide(candidate(), HD, free_bytes=100 * GB).action == "import"


def test_every_reason_is_kept_not_just_the_first():
    bad = candidate("Heat.1995.CAM-GRP.exe", size=0, path="/inbox/_UNPACK_Heat/Heat.1995.CAM-GRP.exe")
    reasons = decide(bad, HD, free_bytes=100 * GB).reasons
    assert [r.split(" ")[0] for r in reasons] == ["Dangerous", "Still", "The", "The"]
    assert reasons[3].endswith("does not take CAM.")


@pytest.mark.parametrize("path, size, says", [
    ("/inbox/Heat.1995.1080p.WEB-DL.mkv.part", 4 * GB, "Not a video file"),
    ("/inbox/Heat.1995.1080p.WEB-DL.mkv.!qB", 4 * GB, "Still being downloaded"),
    ("/inbox/Heat.1995.1080p.WEB-DL/Sample/heat-sample.mkv", 50_000_000, "A sample"),
    ("/inbox/Heat.1995.1080p.WEB-DL/heat.sample.mkv", 50_000_000, "A sample"),
    ("/inbox/Heat.1995.1080p.WEB-DL.nfo", 4_000, "Not a video file (.nfo)"),
    ("/inbox/1080p.WEB-DL.mkv", 4 * GB, "says no title"),
])
def test_files_that_are_not_a_finished_movie_are_refused(path, size, says):
    found = decide(Candidate(path, size, parse(path.rsplit("/", 1)[1])), HD, free_bytes=100 * GB)
    assert found.action == "reject" and any(says in r for r in found.reasons), found.reasons


def test_a_short_runtime_is_a_sample_whatever_its_name():
    assert "A sample, not the movie." in decide(candidate(runtime_seconds=42.0), HD).reasons


def test_a_big_file_named_sample_is_not_one():
    assert decide(candidate("Sample.1995.1080p.WEB-DL.mkv"), HD).accepted


class TestUpgrades:
    def existing(self, name):
        return Existing("/lib/Heat (1995)/Heat.mkv", parse(name).quality)

    def test_a_better_quality_below_the_cutoff_replaces_the_file(self):
        found = decide(candidate(), HD, existing=self.existing("Heat.1995.720p.WEB-DL"))
        assert found.action == "upgrade" and found.replaces.quality.name == "WEB 720p"

    def test_the_same_or_worse_quality_is_not_an_upgrade(self):
        found = decide(candidate(), HD, existing=self.existing("Heat.1995.1080p.WEBRip"))
        assert found.reasons == ["Not an upgrade: the library has it in WEB 1080p, this is WEB 1080p."]

    def test_nothing_replaces_a_file_that_meets_the_cutoff_but_a_proper(self):
        have = self.existing("Heat.1995.1080p.BluRay")
        better = candidate("Heat.1995.1080p.BluRay.REMUX-GRP.mkv")
        assert "does not take" in decide(better, HD, existing=have).reasons[0]
        proper = decide(candidate("Heat.1995.PROPER.1080p.BluRay-GRP.mkv"), HD, existing=have)
        assert proper.action == "upgrade"

    def test_upgrades_can_be_turned_off(self):
        no = QualityProfile("Keep", allowed=HD.allowed, cutoff="Bluray-1080p", upgrades=False)
        found = decide(candidate(), no, existing=self.existing("Heat.1995.720p.WEB-DL"))
        assert "Upgrades are off" in found.reasons[0]

    def test_the_profiles_own_order_counts_not_the_ladder(self):
        web_first = QualityProfile("WEB first", allowed=("Bluray-1080p", "WEB 1080p"),
                                   cutoff="WEB 1080p")
        found = decide(candidate(), web_first, existing=self.existing("Heat.1995.1080p.BluRay"))
        assert found.action == "upgrade"


def test_content_already_imported_is_refused_and_identical_content_is_linked():
    known = decide(candidate(content_hash="abc"), HD, imported_before=True)
    assert known.reasons == ["Already imported: a file with the same content was imported before."]
    same = decide(candidate(), HD, identical_in_library="/lib/Heat (1995)/Heat.mkv",
                  free_bytes=0)
    assert same.action == "link_identical"


def test_import_anyway_overrides_policy_but_never_facts():
    have = Existing("/lib/Heat.mkv", parse("Heat.1995.2160p.BluRay.REMUX").quality)
    refused = decide(candidate(), HD, existing=have, imported_before=True)
    assert refused.action == "reject" and refused.overridable
    forced = decide(candidate(), HD, existing=have, imported_before=True, force=True)
    assert forced.action == "import" and forced.replaces is None
    assert forced.reasons[1].startswith("Imported anyway: Not an upgrade")
    empty = decide(candidate(size=0), HD, existing=have, force=True)
    assert empty.action == "reject" and not empty.overridable
    assert empty.reasons[:2] == ["The file is empty (0 bytes).", "Not an upgrade: the library has "
                                 "it in Remux-2160p, this is WEB 1080p."]
    setup = candidate("Heat.1995.1080p.BluRay-GRP.exe")
    assert decide(setup, HD, force=True).reasons == [
        "Dangerous file type .exe: an executable or script is never imported."]


def test_free_space_counts_the_margin_unless_the_file_is_linked():
    tight = decide(candidate(size=4 * GB), HD, free_bytes=4 * GB + 50_000_000)
    assert tight.reasons[0].startswith("Not enough free space in the library: 4.0 GB free")
    assert decide(candidate(), HD, free_bytes=1, same_filesystem=True).accepted


@pytest.mark.parametrize("fields, says", [
    ({"allowed": ("Bluray-9000p",)}, "not a quality"), ({"allowed": ()}, "at least one"),
    ({"allowed": ("WEB 720p",), "cutoff": "Bluray-1080p"}, "cutoff must be"),
])
def test_a_bad_profile_is_refused(fields, says):
    with pytest.raises(ProfileError, match=says):
        QualityProfile("x", **{"cutoff": "WEB 720p", **fields})


def test_qualities_order_with_revisions():
    assert Quality("WEB 1080p", 2) > Quality("WEB 1080p") > Quality("WEB 720p", 5)
