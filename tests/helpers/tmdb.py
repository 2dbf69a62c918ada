"""A fake TMDB on loopback: the public internet is the one thing the tests mock."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest


class FakeTmdb(BaseHTTPRequestHandler):
    answer = (200, {}, {"results": []})
    seen: list = []

    def do_GET(self):
        FakeTmdb.seen.append((urlparse(self.path).path, parse_qs(urlparse(self.path).query),
                              self.headers.get("Authorization")))
        code, headers, body = FakeTmdb.answer
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode() if not isinstance(body, bytes) else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTmdb)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeTmdb.seen = []
    yield server
    server.shutdown()


HEAT = {"results": [{"id": 949, "title": "Heat", "release_date": "1995-12-15",
                     "original_title": "Heat"},
                    {"id": 1, "title": "Heat", "release_date": "1986-03-14"}]}
