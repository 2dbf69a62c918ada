"""Progress figures: never backwards, totals grow when rsync sees more, ETA only when it means something."""

from jobs.engines.progress import UNFINISHED_CAP, add_speed_point, advance, smooth

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


def test_the_speed_history_stays_bounded_evenly_spaced_and_whole():
    history: dict = {}
    for second in range(1, 1001):
        history = add_speed_point(history, second, 5 * MB if second <= 500 else 1 * MB, limit=50)
    points = history["points"]
    assert 25 <= len(points) <= 50 and history["step"] == 32
    assert points[0][0] <= 40 and points[-1][0] >= 960
    gaps = {b[0] - a[0] for a, b in zip(points, points[1:], strict=False)}
    assert gaps == {32}
    assert {rate for at, rate in points if at <= 500} == {5 * MB}
    assert {rate for at, rate in points if at > 500} == {1 * MB}


def test_samples_closer_than_the_step_are_skipped():
    history = add_speed_point({}, 0.0, 10.0)
    assert add_speed_point(history, 0.4, 99.0) is history
    assert add_speed_point(history, 1.0, 20.0)["points"] == [[0.0, 10], [1.0, 20]]


def test_speed_is_data_written_never_files_left_unchanged():
    # An incremental run: 900 MB of unchanged files go by in a second, 2 MB are written.
    p = advance(None, 0, 0, 1000, 1000 * MB, 0, 0, written=0)
    p = advance(p, 900, 900 * MB, 1000, 1000 * MB, 1.0, 1, written=2 * MB)
    assert p.byte_rate == 2 * MB
    assert p.bytes == 900 * MB


def test_a_restarted_part_is_no_negative_speed():
    p = advance(None, 10, 50 * MB, 100, 100 * MB, 0, 1, written=50 * MB)
    p = advance(p, 10, 50 * MB, 100, 100 * MB, 1.0, 2, written=0)
    assert p.byte_rate >= 0 and p.rate >= 0


def test_the_eta_counts_only_the_share_of_the_data_left_that_needs_writing():
    # A first backup writes everything: 10 MB/s over 900 MB left is 90 s.
    first = advance(None, 0, 0, 0, 1000 * MB, 0, 0, written=0)
    for second in range(1, 11):
        first = advance(first, 0, second * 10 * MB, 0, 1000 * MB, 1.0, second,
                        written=second * 10 * MB)
    assert 85 <= first.eta_seconds <= 95
    # An incremental that has had to write a tenth of what it has seen expects a tenth.
    # After 900 MB seen and 90 MB written, 10 MB of the 100 MB left: 1 s at 10 MB/s.
    again = advance(None, 0, 0, 0, 1000 * MB, 0, 0, written=0)
    for second in range(1, 10):
        again = advance(again, 0, second * 100 * MB, 0, 1000 * MB, 1.0, second + 10,
                        written=second * 10 * MB)
    assert 0.9 <= again.eta_seconds <= 1.1
