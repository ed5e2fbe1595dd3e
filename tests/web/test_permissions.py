"""Every console route checks the role and the CSRF token on the server: one parametrised test
over all of them (found on the app, so a new page cannot forget), as tests/api does for the API."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from clm.auth.service import PERMISSIONS
from clm.web import CONSOLE_ROUTERS
from tests.web.conftest import ROLES, sign_in


def _console_routes() -> list[tuple[str, str, str | None]]:
    found = []
    routes = [route for router in CONSOLE_ROUTERS for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        guards = [d.call for d in route.dependant.dependencies if hasattr(d.call, "permission")]
        if not guards:
            continue
        for method in sorted(route.methods):
            found.append((method, route.path, guards[0].permission))  # type: ignore[union-attr]
    return found


ROUTES = _console_routes()
PROTECTED = [(m, p, perm) for m, p, perm in ROUTES if perm is not None]
POSTS = [(m, p, perm) for m, p, perm in ROUTES if m == "POST"]


def concrete(path: str) -> str:
    return path.replace("{customer_id}", "1")


def test_the_console_routes_are_found_and_few_are_public():
    # every console route has a guard (a route without one would not be listed at all)
    assert all(
        any(hasattr(d.call, "permission") for d in r.dependant.dependencies)
        for router in CONSOLE_ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute)
    )
    assert len(PROTECTED) >= 14
    public = sorted((m, p) for m, p, perm in ROUTES if perm is None)
    assert public == [("GET", "/login"), ("POST", "/lang"), ("POST", "/login")]
    assert ("POST", "/settings/users/disable", "admin") in ROUTES


@pytest.mark.parametrize(("method", "path", "permission"), PROTECTED)
def test_signed_out_requests_go_to_the_sign_in_page(client, engine, method, path, permission):
    if method == "GET":
        response = client.get(concrete(path), follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    else:  # a POST from nowhere has no CSRF token either: refused before anything else
        response = client.post(concrete(path), data={}, follow_redirects=False)
        assert response.status_code == 403


@pytest.mark.parametrize(("method", "path", "permission"), POSTS)
def test_a_post_without_the_csrf_token_is_refused(client, team, method, path, permission):
    token = sign_in(client, "alice")  # an admin: only the token is missing
    for data, headers in (
        ({}, {}),
        ({"csrf_token": "forged"}, {}),
        ({}, {"X-CSRF-Token": token[:-2] + "xx"}),
    ):
        response = client.post(concrete(path), data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403
        assert "没有执行任何操作" in response.text or "nothing was done" in response.text


@pytest.mark.parametrize("who", list(ROLES))
def test_each_role_gets_exactly_its_rights(client, team, engine, who):
    token = sign_in(client, who)
    for method, path, permission in PROTECTED:
        if (method, path) == ("POST", "/logout"):
            continue  # it would end the session the next routes need; every role may sign out
        allowed = permission in PERMISSIONS[ROLES[who]]
        if method == "GET":
            response = client.get(concrete(path), follow_redirects=False)
        else:
            response = client.post(
                concrete(path),
                data={"csrf_token": token, "email": "nobody@example.com"},
                follow_redirects=False,
            )
        if allowed:
            assert response.status_code in (200, 303, 404, 422), (method, path, response.text[:300])
            assert "无权" not in response.text
        else:
            assert response.status_code == 403, (method, path)
            assert "无权" in response.text


def test_a_viewer_cannot_disable_a_user(client, team, engine):
    from clm.auth.users import find_user

    token = sign_in(client, "vic")
    response = client.post("/settings/users/disable", data={"csrf_token": token, "email": "mark@example.com"})
    assert response.status_code == 403
    assert not find_user(engine, "mark@example.com").disabled
    # the same action by an admin works
    client.cookies.clear()
    token = sign_in(client, "alice")
    response = client.post(
        "/settings/users/disable",
        data={"csrf_token": token, "email": "mark@example.com"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert find_user(engine, "mark@example.com").disabled
