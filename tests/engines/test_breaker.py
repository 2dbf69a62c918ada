"""Circuit breaker rules: open on failure with a growing wait, one probe when it is over, one
success closes."""

import datetime as dt

from jobs.engines import breaker
from jobs.engines.breaker import CLOSED, HALF_OPEN, OPEN, State

T0 = dt.datetime(2026, 5, 1, 12, 0)
MINUTE = dt.timedelta(minutes=1)


def test_the_wait_grows_from_a_minute_to_a_day_and_stays_there():
    waits = [breaker.wait_after(n) for n in range(1, 13)]
    assert [w / MINUTE for w in waits] == [1, 5, 15, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440]


def test_a_closed_breaker_lets_calls_through():
    assert breaker.may_call(State(), T0) == (True, State())


def test_a_failure_opens_it_and_calls_are_refused_until_the_wait_is_over():
    opened = breaker.after_failure(State(), "connection refused", T0)
    assert opened == State(OPEN, 1, T0 + MINUTE, "connection refused")
    assert breaker.may_call(opened, T0 + 59 * MINUTE / 60)[0] is False
    allowed, probing = breaker.may_call(opened, T0 + MINUTE)
    assert allowed and probing.state == HALF_OPEN
    # the probe is out: nobody else goes
    assert breaker.may_call(probing, T0 + 2 * MINUTE)[0] is False


def test_a_failed_probe_waits_longer_and_a_good_one_closes():
    state = State()
    for failures, wait in [(1, 1), (2, 5), (3, 15)]:
        state = breaker.after_failure(state, "down", T0)
        assert state.failures == failures and state.next_try == T0 + wait * MINUTE
    assert breaker.after_success(state) == State(CLOSED, 0, None, "")


def test_a_probe_that_never_reports_back_frees_the_breaker():
    probing = State(HALF_OPEN, 2, T0, "down")
    assert breaker.may_call(probing, T0 + breaker.PROBE_TIMEOUT - MINUTE)[0] is False
    allowed, again = breaker.may_call(probing, T0 + breaker.PROBE_TIMEOUT)
    assert allowed and again.next_try == T0 + breaker.PROBE_TIMEOUT
