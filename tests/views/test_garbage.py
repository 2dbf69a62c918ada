"""Bad input gets a clear error, never a 500: every route the permission matrix knows, as an
admin, with each field of every form and each query parameter the pages use set to long,
NUL, invalid UTF-8, negative, huge and path-like values, and huge or odd ids in the path."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token, html, log_in
from tests.helpers.pages import MATRIX, seed

# Parameters read from query strings (filters, sorting, paging, paths into snapshots).
QUERY = {"profile", "state", "status", "kind", "days", "q", "sort", "page", "path", "level",
         "a", "b", "format", "show", "before", "next", "token", "s", "outcome", "name"}
VALUES = {
    "long": "A" * 200_000,
    "nul": "a\x00b",
    "utf8": "%FF%FE%C3%28",            # sent raw: bytes that are not UTF-8
    "negative": "-1",
    "huge": "9" * 40,
    "hugeneg": "-" + "9" * 40,
    "digits": "²³",                    # isdigit(), yet int() refuses them
    "path": "/" + "n" * 300 + "/x",    # a name longer than any filesystem takes
    "dots": "../../etc/passwd",
    "controls": "a\tb\nc\rd\x1b",
}
ODD_IDS = ["9" * 40, "0", "-1", "1e3", "%00"]


@pytest.fixture
def environ(environ, tmp_path):
    """The seeded profile's folder is one the pages accept, so its form can be valid."""
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path)}


def field_names(client, paths) -> set[str]:
    names = set(QUERY)
    for path in paths:
        page = html(client.get(path))
        names |= {tag["name"] for tag in page.select("input[name], select[name], textarea[name]")}
    return names - {"csrf_token"}


def encoded(names, value: str) -> str:
    raw = value if value.startswith("%") else re.sub(
        r"[^A-Za-z0-9]", lambda m: f"%{ord(m[0]):02X}" if ord(m[0]) < 128 else m[0], value)
    return "&".join(f"{name}={raw}" for name in sorted(names))


def ordered(routes):
    # Routes that remove things go last, so the others still find what they name.
    return sorted(routes, key=lambda r: any(w in r[0] for w in ("delete", "remove", "logout")))


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_no_garbage_in_any_field_makes_a_500(client, ada, vera, tmp_path, kind):
    places = seed(tmp_path, vera)
    log_in(client, ada)
    gets = [MATRIX[r][0].format(**places) for r in MATRIX if r[1] == "GET"]
    names = field_names(client, [p for p in gets if "/ws" not in p and "healthz" not in p
                                 and "download" not in p])
    token = csrf_token(client, "/account/")
    failures = []
    for route in ordered(r for r in MATRIX if r[0] != "__flask_sock.feed"):
        path = MATRIX[route][0].format(**places).split("?")[0]
        query = encoded(names, VALUES[kind])
        try:   # the test client raises what the app would have answered with a 500
            if route[1] == "GET":
                response = client.get(f"{path}?{query}")
            else:
                response = client.post(path, data=f"csrf_token={token}&{query}".encode(),
                                       content_type="application/x-www-form-urlencoded",
                                       headers={"X-CSRFToken": token})
        except Exception as error:
            failures.append(f"{route[1]} {path[:80]}: {type(error).__name__}: {str(error)[:120]}")
            continue
        if response.status_code >= 500 and route[0] != "health.healthz":   # 503: no worker
            failures.append(f"{route[1]} {path}: {response.status_code}")
        if route[0] == "auth.logout":
            log_in(client, ada)
            token = csrf_token(client, "/account/")
    assert not failures, "\n".join(failures)


def test_odd_ids_and_names_in_paths_are_404s_not_500s(client, ada, vera, tmp_path):
    places = seed(tmp_path, vera)
    log_in(client, ada)
    token = csrf_token(client, "/account/")
    failures = []
    for route in ordered(r for r in MATRIX if r[0] != "__flask_sock.feed"):
        template = MATRIX[route][0].split("?")[0]
        for odd in ODD_IDS + ["A" * 5000]:
            odd_places = {k: (odd if k not in ("src",) else v) for k, v in places.items()}
            # Ids written into the matrix's paths (/picker/preview/1) go odd too.
            path = re.sub(r"/\d+(?=/|$)", "/" + odd, template).format(**odd_places)
            if path == template.format(**places):
                continue
            try:
                response = (client.get(path) if route[1] == "GET" else
                            client.post(path, data={"csrf_token": token}))
            except Exception as error:
                failures.append(f"{route[1]} {path[:80]}: {type(error).__name__}: {error}")
                continue
            if response.status_code >= 500:
                failures.append(f"{route[1]} {path[:80]}: {response.status_code}")
    assert not failures, "\n".join(failures)


def forms_on(client, paths) -> dict[tuple[str, str], dict[str, str]]:
    """Every form the pages show, by (method, action), with the values its fields hold (the
    checked choice, the first option), so that one field at a time can go bad."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for path in paths:
        for form in html(client.get(path)).select("form"):
            fields: dict[str, str] = {}
            for tag in form.select("input[name], select[name], textarea[name]"):
                name = tag["name"]
                if tag.name == "select":
                    option = tag.select_one("option[selected]") or tag.select_one("option")
                    fields.setdefault(name, option.get("value", option.text) if option else "")
                elif tag.name == "textarea":
                    fields.setdefault(name, tag.text)
                elif tag.get("type") in ("checkbox", "radio") and not tag.has_attr("checked"):
                    continue
                else:
                    fields.setdefault(name, tag.get("value", ""))
            method = form.get("method", "get").upper()
            if len(fields) > (1 if method == "POST" else 0):
                found.setdefault((method, (form.get("action") or path).split("?")[0]), fields)
    return found


def sent(client, method: str, action: str, body: dict[str, str]):
    raw = {k: v.encode("utf-8", "surrogateescape") for k, v in body.items()}
    if method == "GET":
        return client.get(action, query_string=raw)
    return client.post(action, data=raw)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_each_field_of_each_form_alone_gone_bad_makes_no_500(client, ada, vera, tmp_path, backend):
    # With every other field valid, so that the bad one is the one the form gets as far as.
    places = seed(tmp_path, vera)
    log_in(client, ada)
    pages = [MATRIX[r][0].format(**places) for r in MATRIX if r[1] == "GET"]
    forms = forms_on(client, [p for p in pages if not any(w in p for w in ("/ws", "healthz",
                                                                           "download"))])
    assert len(forms) >= 10, sorted(forms)
    edit = f"/profiles/{places['profile']}/edit"
    assert sent(client, "POST", edit, forms["POST", edit]).status_code in (302, 303), \
        "the base of the sweep is valid"
    assert ("GET", "/history") in forms and ("GET", "/history.csv") not in forms
    forms[("GET", "/history.csv")] = forms[("GET", "/history.json")] = forms[("GET", "/history")]
    failures = []
    for (method, action), fields in sorted(forms.items(), key=lambda f: "delete" in f[0][1]):
        for name in [n for n in fields if n != "csrf_token"]:
            for kind, value in VALUES.items():
                body = {**fields, name: value if kind != "utf8" else "\udcff\udcfe"}
                try:
                    response = sent(client, method, action, body)
                    response.get_data()   # a streamed export fails while it streams
                except Exception as error:
                    failures.append(f"{method} {action} {name}={kind}: {type(error).__name__}: "
                                    f"{str(error)[:120]}")
                    continue
                if response.status_code >= 500:
                    failures.append(f"{method} {action} {name}={kind}: {response.status_code}")
    assert not failures, "\n".join(failures)
