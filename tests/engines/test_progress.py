"""Progress figures: never backwards, totals grow when rsync sees more, ETA only when it means something."""

from jobs.engines.progress import UNFINISHED_CAP, advance, smooth

MB = 1_000_000


def test_the_fraction_never_goes_backwards_when_a_unit_restarts():
    first = advance(None, 50, 50 * MB, 100, 100 * MB, 0, 1)
    restarted = advance(first, 10, 10 * MB, 100, 100 * MB, 1.0, 2)
    assert restarted.fraction == first.fraction
    assert restarted.files == 50 and restarted.bytes == 50 * MB


def test_totals_grow_when_rsync_finds_more_than_the_scan():
    p = advance(None, 120, 130 * MB, 100, 100 * MB, 0, 1)
    assert p.total_files == 120 and p.total_bytes == 130 * MB
    assert p.fraction == UNFINISHED_CAP


def test_eta_is_hidden_at_first_then_follows_the_smoothed_rate():
    p = advance(None, 0, 0, 0, 1000 * MB, 0, 0)
    for second in range(1, 31):
        p = advance(p, 0, second * 10 * MB, 0, 1000 * MB, 1.0, second)
        if second < 10:
            assert p.eta_seconds is None
    assert abs(p.byte_rate - 10 * MB) < 0.01 * MB
    assert 69 <= p.eta_seconds <= 71


def test_smoothing_damps_a_spike():
    assert smooth(100.0, 1000.0, 1.0) < 200.0
    assert smooth(None, 1000.0, 1.0) == 1000.0
