"""Circuit breakers in the database: every worker asks the same row before calling an outside
service, and reports how the call went. See jobs/engines/breaker.py for the rules."""

from __future__ import annotations

import datetime as dt

from jobs.engines import breaker as rules
from jobs.engines.humane import format_count
from models import Event, utcnow
from models.breaker import Breaker


class Paused(Exception):
    """The breaker is open: the call was not made."""

    def __init__(self, breaker: Breaker) -> None:
        when = breaker.next_try.strftime("%Y-%m-%d %H:%M UTC") if breaker.next_try else "later"
        super().__init__(f"{breaker.label or breaker.name} is paused after "
                         f"{format_count(breaker.failures, 'failure')} in a row; next try {when}. "
                         "Last error: "
                         f"{breaker.last_error}")
        self.breaker = breaker


def _state(breaker: Breaker) -> rules.State:
    return rules.State(breaker.state, breaker.failures, breaker.next_try, breaker.last_error)


def check(name: str, label: str = "", now: dt.datetime | None = None) -> Breaker:
    """Return the breaker if a call may go now (taking the probe if it is one), else Paused."""
    now = now or utcnow()
    breaker = Breaker.named(name, label)
    allowed, after = rules.may_call(_state(breaker), now)
    if not allowed:
        raise Paused(breaker)
    if after.state != breaker.state or after.next_try != breaker.next_try:
        # Only one caller takes the probe: the one whose UPDATE still finds the old state.
        took = (Breaker.update(state=after.state, next_try=after.next_try, updated_at=now)
                .where((Breaker.id == breaker.id) & (Breaker.state == breaker.state)
                       & (Breaker.next_try == breaker.next_try)).execute())
        if not took:
            raise Paused(Breaker.get_by_id(breaker.id))
    return breaker


def succeeded(name: str, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    breaker = Breaker.named(name)
    was_open = breaker.state != rules.CLOSED
    Breaker.update(state=rules.CLOSED, failures=0, next_try=None, last_success_at=now,
                   updated_at=now).where(Breaker.id == breaker.id).execute()
    if was_open:
        Event.publish("breaker.closed", f"breaker:{breaker.id}",
                      f"{breaker.label or name} works again.", breaker=breaker.id)


def failed(name: str, error: str, label: str = "", now: dt.datetime | None = None) -> Breaker:
    now = now or utcnow()
    breaker = Breaker.named(name, label)
    after = rules.after_failure(_state(breaker), error, now)
    Breaker.update(state=after.state, failures=after.failures, next_try=after.next_try,
                   last_error=error, last_error_at=now, updated_at=now).where(
        Breaker.id == breaker.id).execute()
    breaker = Breaker.get_by_id(breaker.id)
    wait = rules.wait_after(after.failures)
    Event.publish("breaker.opened", f"breaker:{breaker.id}",
                  f"{breaker.label or name} is paused for {_words(wait)} after failure "
                  f"{after.failures}: {error}", level="warning", breaker=breaker.id)
    return breaker


def reset(breaker: Breaker, now: dt.datetime | None = None) -> None:
    """An operator says: try again now."""
    now = now or utcnow()
    Breaker.update(state=rules.CLOSED, failures=0, next_try=None, updated_at=now).where(
        Breaker.id == breaker.id).execute()


def _words(wait: dt.timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"
