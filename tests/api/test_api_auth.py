"""Issue 11 §3: logins, lockout, sessions, CSRF, tokens, disabled users; all audited."""

from __future__ import annotations

from contextlib import closing

import pytest
from api_sim import PASSWORD, Site, user_of

from kontur.wire.messages import AuditEvent

REFUSED = {"detail": "expected a valid name and password, got a refused login"}


def _login(site: Site, name: str, password: str) -> tuple[int, dict[str, object]]:
    with site.client() as c:
        r = c.post("/auth/login", json={"name": name, "password": password})
    return r.status_code, r.json()


def test_a_login_sets_a_strict_httponly_cookie_and_answers_a_csrf_token(site: Site) -> None:
    with site.client() as c:
        r = c.post("/auth/login", json={"name": user_of("viewer"), "password": PASSWORD})
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == user_of("viewer") and body["roles"] == ["viewer"]
        assert len(body["csrf_token"]) >= 40
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("kontur_session=")
        for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=3600"):
            assert flag in cookie, cookie
        assert "Secure" not in cookie  # plain http on loopback: a browser would drop it
        me = c.get("/auth/me").json()
    assert me == {
        "name": user_of("viewer"),
        "roles": ["viewer"],
        "permissions": ["events:read", "metrics:read", "status:read"],
        "via": "session",
    }
    site.supervisor.audit(actor=user_of("viewer"), action="login", outcome="ok")


def test_an_unknown_name_gets_the_same_answer_as_a_wrong_password(site: Site) -> None:
    assert _login(site, "nobody", "whatever-it-is") == (401, REFUSED)
    assert _login(site, user_of("auditor"), "whatever-it-is") == (401, REFUSED)
    ev = site.supervisor.audit(actor="nobody", action="login_failed", outcome="refused")
    assert "unknown user" in ev.detail


def test_brute_force_is_throttled_then_locks_the_account_out(site: Site) -> None:
    site.users.add_user("target", ["viewer"], PASSWORD)
    for _ in range(3):  # three free failures
        assert _login(site, "target", "guess-guess-guess") == (401, REFUSED)
    with site.client() as c:  # the fourth must wait 1 s: refused before any hashing
        r = c.post("/auth/login", json={"name": "target", "password": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    site.supervisor.audit(actor="target", action="login_throttled", outcome="refused")
    site.clock.advance(1.0)
    assert _login(site, "target", "guess-guess-guess")[0] == 401
    assert _login(site, "target", "guess-guess-guess")[0] == 429  # now 2 s
    site.clock.advance(2.0)
    assert _login(site, "target", "guess-guess-guess")[0] == 401  # the fifth: lockout
    ev = site.supervisor.audit(actor="target", action="lockout", outcome="refused")
    assert "locked for 900 s after 5 failures" in ev.detail
    site.clock.advance(4.0)
    assert _login(site, "target", PASSWORD) == (401, REFUSED)  # even the right password
    # waits for this refusal's own audit event (the guesses' login_failed came before it)
    site.supervisor.wait_for(
        lambda m: isinstance(m, AuditEvent) and m.actor == "target"
        and m.action == "login_failed" and "locked until" in m.detail
    )  # fmt: skip
    site.clock.advance(900.0)
    status, body = _login(site, "target", PASSWORD)
    assert status == 200 and body["name"] == "target"


def test_a_cookie_post_without_the_csrf_header_is_403_and_audited(site: Site) -> None:
    c, csrf = site.login(user_of("admin"))
    with closing(c):
        r = c.post("/users", json={"name": "csrf-victim", "roles": ["viewer"]})
        assert r.status_code == 403
        assert r.json() == {
            "detail": "expected this session's X-CSRF-Token header, got none or a wrong one"
        }
        site.supervisor.audit(
            actor=user_of("admin"), action="users:admin", outcome="refused",
            detail="no or a wrong CSRF token",
        )  # fmt: skip
        r = c.post("/users", json={"name": "csrf-victim", "roles": ["viewer"]},
                   headers={"X-CSRF-Token": "x" * 43})  # fmt: skip
        assert r.status_code == 403
        r = c.post("/users", json={"name": "csrf-ok", "roles": ["viewer"]},
                   headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert r.status_code == 201, r.text
        assert c.get("/users").status_code == 200  # a read needs no CSRF header


def test_logout_revokes_the_session(site: Site) -> None:
    c, csrf = site.login(user_of("auditor"))
    with closing(c):
        cookie = c.cookies["kontur_session"]
        assert c.post("/auth/logout", headers={"X-CSRF-Token": csrf}).json() == {"revoked": True}
    with site.client() as other:  # the old cookie, replayed
        other.cookies.set("kontur_session", cookie)
        r = other.get("/auth/me")
    assert r.status_code == 401


def test_a_session_expires(site: Site) -> None:
    c, _ = site.login(user_of("operator"))
    with closing(c):
        assert c.get("/auth/me").status_code == 200
        site.clock.advance(3600.0)
        r = c.get("/auth/me")
    assert r.status_code == 401
    ev = site.supervisor.audit(actor=user_of("operator"), action="authenticate", outcome="refused")
    assert "expired" in ev.detail


@pytest.mark.parametrize("via", ["token", "session"])
def test_a_disabled_users_token_and_session_are_401_at_once(site: Site, via: str) -> None:
    name = f"leaver-{via}"
    site.users.add_user(name, ["viewer"], PASSWORD)
    token = site.users.create_token(name, "laptop")
    session, _ = site.login(name)
    with closing(session), site.client(headers={"Authorization": f"Bearer {token}"}) as bearer:
        c = bearer if via == "token" else session
        assert c.get("/status").status_code == 200
        with site.client("admin") as admin:
            r = admin.post(f"/users/{name}/disable")
        assert r.status_code == 200 and r.json()["disabled"] is True
        site.supervisor.audit(actor=user_of("admin"), action="users:admin", target=f"user {name}")
        r = c.get("/status")
    assert r.status_code == 401
    assert r.json()["detail"] == (
        "expected valid credentials (a session cookie or a bearer token), got invalid or "
        "expired ones"
    )
    ev = site.supervisor.audit(actor=name, action="authenticate", outcome="refused")
    assert "disabled" in ev.detail or "ended" in ev.detail
    assert _login(site, name, PASSWORD) == (401, REFUSED)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer kontur_not-a-real-token",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "bearer " + "k" * 5000,
        "Bearer kontur_" + "\u00e9" * 10,
    ],
)
def test_bad_bearer_tokens_are_401(site: Site, header: str) -> None:
    with site.client() as c:
        r = c.get("/status", headers={"Authorization": header.encode()})  # type: ignore[dict-item]
    assert r.status_code == 401
    assert "\n" not in r.json()["detail"]


def test_a_forged_cookie_is_401(site: Site) -> None:
    with site.client() as c:
        c.cookies.set("kontur_session", "forged")
        assert c.get("/status").status_code == 401


def test_users_are_listed_without_secrets(site: Site) -> None:
    with site.client("admin") as c:
        users = c.get("/users").json()["users"]
    viewer = next(u for u in users if u["name"] == user_of("viewer"))
    assert viewer["tokens"] == ["matrix"] and viewer["roles"] == ["viewer"]
    assert set(viewer) == {"name", "roles", "disabled", "locked", "created", "tokens"}


def test_the_user_store_keeps_no_secret_in_clear(site: Site) -> None:
    raw = (site.data_dir / "users.sqlite").read_bytes()
    wal = site.data_dir / "users.sqlite-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert PASSWORD.encode() not in raw
    for token in site.tokens.values():
        assert token.encode() not in raw
    assert (site.data_dir / "users.sqlite").stat().st_mode & 0o777 == 0o600
