"""The live feed over a real WebSocket, against the app served on a real port."""

import struct
import threading
import time

import pytest

from models import Event, Host, User, db
from tests.helpers.feed import (
    WAIT,
    close_code,
    connect,
    raw_socket,
    read_frame,
    receive_until,
    session_cookie,
)
from views import feed


@pytest.fixture
def vera_cookie(app, vera):
    return session_cookie(app, vera)


def test_a_socket_without_a_session_is_closed_with_1008(live_server, ada):
    assert close_code(live_server) == 1008


def test_a_socket_from_another_site_is_closed_with_1008(live_server, vera_cookie):
    assert close_code(live_server, vera_cookie, origin="http://evil.example") == 1008


def test_a_socket_from_another_port_of_this_box_is_closed_with_1008(live_server, vera_cookie):
    assert close_code(live_server, vera_cookie, origin="http://127.0.0.1:3000") == 1008


@pytest.mark.parametrize("query", ["", "s=nothing", "s=system&s=nothing", "s=" + "x" * 500,
                                   "s=" + "&s=".join(["system"] * 21)])
def test_a_socket_must_name_known_subjects(live_server, vera_cookie, query):
    assert close_code(live_server, vera_cookie, query=query) == 1008


def test_on_connect_the_page_gets_the_current_state(live_server, vera_cookie):
    ws = connect(live_server, vera_cookie)
    receive_until(ws, "#system-panel")
    ws.close()
    ws = connect(live_server, vera_cookie)
    receive_until(ws, "#activity #activity-list")
    ws.close()


def test_the_system_panel_is_pushed_again_every_two_seconds(live_server, vera_cookie):
    ws = connect(live_server, vera_cookie, query="s=system")
    first = receive_until(ws, "#system-panel").select_one("#system-panel")["data-sampled-at"]
    deadline = time.monotonic() + WAIT
    newer = first
    while newer == first and time.monotonic() < deadline:
        newer = receive_until(ws, "#system-panel").select_one("#system-panel")["data-sampled-at"]
    assert newer > first  # a fresh reading within 5 s, without asking for it
    assert receive_until(ws, "#worker-status").select_one("#worker-status")["data-alive"] == "no"
    ws.close()


def test_an_event_a_job_appends_is_pushed_to_the_activity_list(live_server, vera_cookie):
    ws = connect(live_server, vera_cookie, query="s=activity")
    receive_until(ws, "#activity")
    with db.connection_context():
        event = Event.publish("worker.online", "system", "Worker started on testbox.")
    pushed = receive_until(ws, f"#activity-{event.id}")
    target = pushed.select_one("[hx-swap-oob]")["hx-swap-oob"]
    assert target == "afterbegin:#activity-list"
    assert pushed.select_one(".what").text == "Worker started on testbox."
    ws.close()


def test_times_are_rendered_in_each_viewers_zone(app, live_server, ada, vera):
    with db.connection_context():
        User.update(timezone="Asia/Tokyo").where(User.id == vera.id).execute()
        vera = User.get_by_id(vera.id)
    tokyo = connect(live_server, session_cookie(app, vera), query="s=activity")
    utc = connect(live_server, session_cookie(app, ada), query="s=activity")
    receive_until(tokyo, "#activity")
    receive_until(utc, "#activity")
    with db.connection_context():
        event = Event.publish("note", "system", "Hello.")
    tokyo_time = receive_until(tokyo, f"#activity-{event.id}").select_one("time")
    utc_time = receive_until(utc, f"#activity-{event.id}").select_one("time")
    assert tokyo_time["title"] == utc_time["title"]
    assert tokyo_time.text != utc_time.text
    tokyo.close()
    utc.close()


def close_frame(stream) -> tuple[int, bytes]:
    """Read frames until the close frame: its code and reason."""
    for _ in range(1000):
        opcode, payload = read_frame(stream)
        if opcode == 0x8:
            return struct.unpack(">H", payload[:2])[0], payload[2:]
    raise AssertionError("the server never closed the socket")


def test_a_demoted_user_loses_a_socket_of_what_they_may_no_longer_watch(app, live_server, ada):
    with db.connection_context():
        User.create_account("grace", "correct horse battery staple", "admin")
    sock, stream = raw_socket(live_server, session_cookie(app, ada), query="s=targets")
    opcode, payload = read_frame(stream)
    assert opcode == 0x1 and b'id="targets"' in payload
    started = time.monotonic()
    with db.connection_context():
        User.get_by_id(ada.id).change_role("operator")
    assert close_frame(stream) == (1008, b"no longer allowed")
    assert time.monotonic() - started < 4
    sock.close()


def test_a_role_change_rerenders_what_an_open_socket_is_sent(app, live_server, ada):
    with db.connection_context():
        User.create_account("grace", "correct horse battery staple", "admin")
        host = Host.create(user="ada", hostname="nas.lan", port=22)
    ws = connect(live_server, session_cookie(app, ada), query="s=hosts")
    assert receive_until(ws, "#hosts").select_one(f"#host-{host.id} button.danger")  # Remove
    with db.connection_context():
        User.get_by_id(ada.id).change_role("viewer")
    # The wall clock on purpose: what is under test is that the broadcaster's own periodic
    # recheck (every RECHECK_SECONDS) notices the new role, with no event to prompt it.
    time.sleep(feed.RECHECK_SECONDS * 2.5)
    with db.connection_context():
        Event.publish("host.changed", host.subject, "Changed.", host=host.id)
    shown = receive_until(ws, "#hosts").select_one(f"#host-{host.id}")
    assert not shown.select("button"), "a viewer's fragment has no buttons"
    ws.close()


def test_one_user_cannot_hold_every_web_thread(app, live_server, vera):
    cookie = session_cookie(app, vera)
    held = [connect(live_server, cookie, query="s=activity") for _ in range(feed.MAX_PER_SESSION)]
    for ws in held:
        receive_until(ws, "#activity")
    assert close_code(live_server, cookie, query="s=activity") == 1013
    for ws in held:
        ws.close()
    # The server learns of a closed socket only when its reader sees the close frame; give
    # its threads a moment to let go of their places before asking for a new one.
    time.sleep(0.5)
    assert receive_until(connect(live_server, cookie, query="s=activity"), "#activity")


def test_a_disabled_user_loses_the_socket(live_server, vera_cookie, vera):
    sock, stream = raw_socket(live_server, vera_cookie, query="s=activity")
    opcode, payload = read_frame(stream)
    assert opcode == 0x1 and b'id="activity"' in payload
    with db.connection_context():
        User.get_by_id(vera.id).set_active(False)
    opcode, payload = read_frame(stream)
    assert opcode == 0x8 and struct.unpack(">H", payload[:2])[0] == 1008
    sock.close()


def test_messages_never_interleave_under_load(live_server, app, ada, vera):
    # Many sockets, many events and the two-second panel at once: every message that arrives
    # must be a whole fragment, and each socket must see every event once, in order.
    sockets = [connect(live_server, session_cookie(app, user), query="s=system&s=activity")
               for user in (ada, vera) * 3]
    for ws in sockets:
        receive_until(ws, "#activity")
    with db.connection_context():
        ids = [Event.publish("note", "system", f"Event {n} " + "x" * 2000).id for n in range(150)]

    def read_all(ws, seen):
        while len(seen) < len(ids):
            fragment = receive_until(ws, "li.event", timeout=20)
            seen.extend(int(li["id"].removeprefix("activity-")) for li in fragment.select("li.event"))

    seen = [[] for _ in sockets]
    readers = [threading.Thread(target=read_all, args=(ws, s)) for ws, s in zip(sockets, seen, strict=True)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60)
    assert all(s == ids for s in seen)
    for ws in sockets:
        ws.close()
