"""Who may call what: every route of the app against every persona.

A new route makes `test_every_route_is_in_the_matrix` fail until it is added to the matrix
(tests/helpers/pages.py) with the least role it needs.
"""

import pytest

from tests.conftest import csrf_token, log_in
from tests.helpers.pages import ADMIN, MATRIX, OPERATOR, PUBLIC, RANK, VIEWER, seed

PERSONAS = ["anonymous", "vera", "otto", "ada"]
ROLE_OF = {"anonymous": None, "vera": VIEWER, "otto": OPERATOR, "ada": ADMIN}


def test_every_route_is_in_the_matrix(app):
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(MATRIX)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", [r for r in MATRIX if r[0] != "__flask_sock.feed"],
                         ids=lambda r: f"{r[1]} {r[0]}")
def test_the_role_decides_access(client, ada, otto, vera, persona, route, tmp_path):
    path, least = MATRIX[route]
    path = path.format(**seed(tmp_path, vera))
    if persona != "anonymous":
        log_in(client, {"ada": ada, "otto": otto, "vera": vera}[persona])
    token = csrf_token(client, "/login" if persona == "anonymous" else "/account/") \
        if route[1] == "POST" else None
    response = client.open(path, method=route[1], data={"csrf_token": token} if token else None)
    assert response.status_code < 500 or route[0] == "health.healthz"  # 503: no worker here
    allowed = RANK[ROLE_OF[persona]] >= RANK[least]
    redirected_to_login = response.status_code == 302 and "/login" in response.headers["Location"]
    if allowed:
        assert response.status_code != 403 and (least is PUBLIC or not redirected_to_login)
    elif persona == "anonymous":
        assert redirected_to_login
    else:
        assert response.status_code == 403
