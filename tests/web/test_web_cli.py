"""``oncohybrid user add|ls`` and the demo account."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from oncohybrid.cli.main import app


def test_user_add_from_stdin_then_sign_in(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(app, ["user", "add", "alice", "--role", "physician", "--password-stdin",
                            "--json"], input="s3cret-pass-quiet-owl\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"username": "alice", "role": "physician"}
    r = runner.invoke(app, ["user", "ls", "--json"])
    assert [u["username"] for u in json.loads(r.stdout)] == ["alice"]
    from oncohybrid.config import get_settings
    from oncohybrid.services.users import authenticate

    assert authenticate(get_settings(), "alice", "s3cret-pass-quiet-owl").role.value == "physician"
    assert authenticate(get_settings(), "alice", "wrong-pass") is None
    # The stored hash is Argon2id, never the password.
    import sqlite3

    con = sqlite3.connect(tmp_path / "oncohybrid.db")
    (h,) = con.execute("select password_hash from web_users").fetchone()
    assert h.startswith("$argon2id$") and "s3cret" not in h


def test_user_add_rejects_bad_role_duplicate_and_short_password(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(app, ["user", "add", "bob", "--role", "surgeon", "--password-stdin"],
                      input="long-enough-password\n")
    assert r.exit_code == 2 and "role must be one of" in r.output
    r = runner.invoke(app, ["user", "add", "bob", "--role", "fellow", "--password-stdin"],
                      input="short\n")
    assert r.exit_code == 2 and "at least 12" in r.output
    runner.invoke(app, ["user", "add", "bob", "--role", "fellow", "--password-stdin"],
                  input="long-enough-password\n")
    r = runner.invoke(app, ["user", "add", "bob", "--role", "fellow", "--password-stdin"],
                      input="long-enough-password\n")
    assert r.exit_code == 2 and "already exists" in r.output


def test_demo_user_is_stable_and_recovers(tmp_path):
    from oncohybrid.config import get_settings
    from oncohybrid.services.users import authenticate, ensure_demo_user

    s = get_settings(tmp_path)
    user, pw = ensure_demo_user(s)
    assert ensure_demo_user(s) == (user, pw)
    assert authenticate(s, user, pw) is not None
    (tmp_path / "web-demo-password.txt").unlink()
    user2, pw2 = ensure_demo_user(s)
    assert pw2 != pw and authenticate(s, user2, pw2) is not None
    assert authenticate(s, user, pw) is None
    assert oct((tmp_path / "web-demo-password.txt").stat().st_mode & 0o777) == "0o600"
