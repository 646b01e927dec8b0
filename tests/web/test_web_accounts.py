"""Accounts under attack and administration: sign-in throttling and lockout (kept in the
database), password strength, case-insensitive names, disable/enable/delete/reset."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oncohybrid.cli.main import app as cli_app
from oncohybrid.config import get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit, users

GOOD_PW = "tumour-board-quiet-lantern"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A workspace with no images: one physician and one admin account."""
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(tmp_path)
    users.add_user(settings, "phys", GOOD_PW, "physician", actor="test")
    users.add_user(settings, "root", GOOD_PW + "-admin", "admin", actor="test")
    return settings


def _client(settings, host: str = "10.1.1.1") -> TestClient:
    from oncohybrid.web.app import create_app

    return TestClient(create_app(settings), base_url="http://testserver", client=(host, 5000))


def _post_login(c: TestClient, username: str, password: str):
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    return c.post("/login", data={"username": username, "password": password,
                                  "csrf_token": token, "next": "/"}, follow_redirects=False)


def _actions(settings) -> list[str]:
    return [e["action"] for e in audit.list_entries(settings, limit=1000)]


def test_forty_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(fresh):
    c = _client(fresh)
    codes = [_post_login(c, "phys", f"wrong-guess-{i}").status_code for i in range(40)]
    assert codes[:users.USER_FREE_FAILURES] == [401] * users.USER_FREE_FAILURES
    assert set(codes[users.USER_FREE_FAILURES:]) == {429}
    r = _post_login(c, "phys", GOOD_PW)
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert int(r.headers["retry-after"]) > 0
    acts = _actions(fresh)
    assert acts.count("login.failed") == users.USER_FREE_FAILURES
    assert "login.lockout" in acts
    assert acts.count("login.locked") == 40 - users.USER_FREE_FAILURES + 1
    # Another name from another address is not affected.
    assert _post_login(_client(fresh, "10.9.9.9"), "root", GOOD_PW + "-admin").status_code == 303


def test_lockout_survives_a_restart_and_ends_with_back_off(fresh, monkeypatch):
    c = _client(fresh)
    for i in range(users.USER_FREE_FAILURES):
        _post_login(c, "phys", f"wrong-guess-{i}")
    # A new application (another worker, or after a restart) sees the same lockout,
    # also for the name typed in another case.
    assert _post_login(_client(fresh, "10.2.2.2"), "PHYS", GOOD_PW).status_code == 429
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=users.LOCK_BASE_S + 1)
    monkeypatch.setattr(users, "_utcnow", lambda: later)
    # After the first lockout each failure doubles it.
    assert _post_login(c, "phys", "wrong-again-1").status_code == 401
    with users.session_scope(fresh) as s:
        row = s.scalar(users.sa.select(users.LoginThrottle).where(
            users.LoginThrottle.scope == "user", users.LoginThrottle.key == "phys"))
        until = users._aware(row.locked_until)
    assert round((until - later).total_seconds()) == 2 * users.LOCK_BASE_S
    later2 = later + dt.timedelta(seconds=2 * users.LOCK_BASE_S + 1)
    monkeypatch.setattr(users, "_utcnow", lambda: later2)
    assert _post_login(c, "phys", GOOD_PW).status_code == 303
    # Success resets the account's counter.
    assert _post_login(c, "phys", "one-more-slip").status_code == 401


def test_one_address_guessing_many_names_is_throttled(fresh):
    c = _client(fresh, "10.6.6.6")
    codes = [_post_login(c, f"nobody{i}", "wrong-guess-xyz").status_code
             for i in range(users.CLIENT_FREE_FAILURES + 3)]
    assert codes[-1] == 429 and codes[0] == 401
    # The real user from this address is refused as well; from elsewhere they get in.
    assert _post_login(c, "phys", GOOD_PW).status_code == 429
    assert _post_login(_client(fresh, "10.7.7.7"), "phys", GOOD_PW).status_code == 303


@pytest.mark.parametrize("pw", ["password", "12345678", "Password1234", "123456789012",
                                "passwordpassword", "qwertyuiop12"])
def test_common_and_weak_passwords_are_refused(fresh, pw):
    with pytest.raises(InputError, match="password"):
        users.add_user(fresh, "weakling", pw, "fellow")
    with pytest.raises(InputError, match="password"):
        users.set_password(fresh, "phys", pw)


def test_password_containing_the_user_name_is_weak(fresh):
    with pytest.raises(InputError, match="too easy to guess"):
        users.add_user(fresh, "mariadelgado", "mariadelgado1", "fellow")


def test_user_names_are_case_insensitive(fresh):
    with pytest.raises(InputError, match="already exists as 'phys'"):
        users.add_user(fresh, "PHYS", GOOD_PW, "fellow")
    assert users.authenticate(fresh, "Phys", GOOD_PW).username == "phys"


def test_cli_disable_enable_reset_delete(fresh):
    runner = CliRunner()
    c = _client(fresh)
    assert _post_login(c, "phys", GOOD_PW).status_code == 303
    assert c.get("/api/worklist").status_code == 200
    r = runner.invoke(cli_app, ["user", "disable", "PHYS"])
    assert r.exit_code == 0, r.output
    assert c.get("/api/worklist").status_code == 401  # the session ended
    assert _post_login(_client(fresh), "phys", GOOD_PW).status_code == 401
    rows = {u["username"]: u for u in json.loads(
        runner.invoke(cli_app, ["user", "ls", "--json"]).stdout)}
    assert rows["phys"]["active"] is False
    assert runner.invoke(cli_app, ["user", "enable", "phys"]).exit_code == 0
    r = runner.invoke(cli_app, ["user", "reset-password", "phys", "--password-stdin"],
                      input="12345678\n")
    assert r.exit_code == 2 and "password" in r.output
    r = runner.invoke(cli_app, ["user", "reset-password", "phys", "--password-stdin"],
                      input="another-calm-harbour-7\n")
    assert r.exit_code == 0, r.output
    assert users.authenticate(fresh, "phys", GOOD_PW) is None
    assert users.authenticate(fresh, "phys", "another-calm-harbour-7") is not None
    assert runner.invoke(cli_app, ["user", "delete", "phys"]).exit_code == 0
    assert runner.invoke(cli_app, ["user", "delete", "phys"]).exit_code == 2
    # The last admin stays.
    r = runner.invoke(cli_app, ["user", "disable", "root"])
    assert r.exit_code == 2 and "last active admin" in r.output
    acts = _actions(fresh)
    for a in ("user.disable", "user.enable", "user.password", "user.delete"):
        assert a in acts


def test_reset_password_lifts_a_lockout(fresh):
    c = _client(fresh)
    for i in range(users.USER_FREE_FAILURES):
        _post_login(c, "phys", f"wrong-guess-{i}")
    users.set_password(fresh, "phys", "fresh-start-maple-9", actor="root")
    assert _post_login(_client(fresh, "10.3.3.3"), "phys", "fresh-start-maple-9"
                       ).status_code == 303


def test_admin_page_disables_resets_and_deletes(fresh):
    c = _client(fresh)
    assert _post_login(c, "root", GOOD_PW + "-admin").status_code == 303
    page = c.get("/admin/users").text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    r = c.post("/admin/users/phys/disable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert users.authenticate(fresh, "phys", GOOD_PW) is None
    r = c.post("/admin/users/phys/enable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and users.authenticate(fresh, "phys", GOOD_PW) is not None
    r = c.post("/admin/users/phys/password", data={"csrf_token": csrf, "password": "password"})
    assert r.status_code == 400 and "password" in r.text
    r = c.post("/admin/users/phys/password",
               data={"csrf_token": csrf, "password": "river-stone-lamp-42"},
               follow_redirects=False)
    assert r.status_code == 303
    assert users.authenticate(fresh, "phys", "river-stone-lamp-42") is not None
    r = c.post("/admin/users/root/disable", data={"csrf_token": csrf})
    assert r.status_code == 400 and "your own account" in r.text
    r = c.post("/admin/users/phys/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "phys" not in [u["username"] for u in users.list_users(fresh)]
    assert c.post("/admin/users/ghost/delete", data={"csrf_token": csrf}).status_code == 400
