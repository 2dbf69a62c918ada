"""The live feed's WebSocket opened as a browser does, and read frame by frame."""

import base64
import os
import socket
import struct
import time

from bs4 import BeautifulSoup
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from models import User

WAIT = 5.0


def session_cookie(app, user: User) -> str:
    """The session cookie the server would have set after `user` logged in."""
    serializer = app.session_interface.get_signing_serializer(app)
    value = serializer.dumps({"_user_id": user.get_id(), "_fresh": True})
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"


def connect(live_server, cookie=None, origin="same", query="s=system&s=activity") -> ClientConnection:
    """A socket as a browser opens it: Host with the port, the page's Origin, its cookie."""
    return ws_connect(f"{live_server.replace('http', 'ws')}/ws?{query}", legacy=True, proxy=None,
                      origin=live_server if origin == "same" else origin,
                      additional_headers={"Cookie": cookie} if cookie else None)


def receive_until(ws: ClientConnection, selector: str, timeout: float = WAIT) -> BeautifulSoup:
    """Read messages until one contains `selector`; every message must be whole HTML."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            continue
        fragment = BeautifulSoup(message, "html.parser")
        assert all(el.get("hx-swap-oob") for el in fragment.find_all(recursive=False)), message
        if fragment.select_one(selector):
            return fragment
    raise AssertionError(f"no {selector} within {timeout} s")


def raw_socket(live_server, cookie=None, origin="same", query="s=system&s=activity"):
    """A WebSocket handshake by hand, for reading exactly the frames the server sends.

    Werkzeug's dev server (this test server) writes a stray HTTP response after flask-sock
    closes a socket, which some clients trip over; gunicorn, which Cairn runs on, does not
    (tests/deploy/test_gunicorn.py). Reading frames off the wire sidesteps the quirk.
    """
    host, port = live_server.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    headers = [f"GET /ws?{query} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
               "Connection: Upgrade", f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
               "Sec-WebSocket-Version: 13", f"Origin: {live_server if origin == 'same' else origin}"]
    if cookie:
        headers.append(f"Cookie: {cookie}")
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    stream = sock.makefile("rb")
    assert stream.readline().startswith(b"HTTP/1.1 101")
    while stream.readline() not in (b"\r\n", b""):
        pass
    return sock, stream


def read_frame(stream) -> tuple[int, bytes]:
    """One unmasked frame from the server: (opcode, payload)."""
    first, second = stream.read(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack(">H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack(">Q", stream.read(8))[0]
    return first & 0x0F, stream.read(length)


def close_code(live_server, cookie=None, origin="same", query="s=system&s=activity") -> int:
    """The code of the close frame the server sends, after any data frames."""
    sock, stream = raw_socket(live_server, cookie, origin, query)
    try:
        for _ in range(100):
            opcode, payload = read_frame(stream)
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0]
        raise AssertionError("the server never closed the socket")
    finally:
        sock.close()
