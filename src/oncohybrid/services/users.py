"""Use-case: local accounts, roles, sign-in sessions, the workspace secret and pseudonyms.

- Passwords are hashed with Argon2id (RFC 9106) through ``argon2-cffi``'s
  :class:`~argon2.PasswordHasher` defaults; hashes are re-computed on sign-in when the
  parameters change (``check_needs_rehash``).
- A session is a random 256-bit token; the cookie carries it signed with the workspace
  secret (``itsdangerous``), the database only its SHA-256, with a per-session CSRF
  synchroniser token (OWASP Session Management and CSRF Prevention cheat sheets).
- Researchers see patients only through a stable keyed pseudonym,
  HMAC-SHA-256(workspace secret, issuer + patient id) (RFC 2104; the keyed-hash
  pseudonymisation of ISO/TS 25237), so the same patient keeps the same pseudonym
  across sessions while nobody without the secret can recompute it from an identifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_web import WebSession, WebUser

__all__ = [
    "Role",
    "UserInfo",
    "SessionInfo",
    "add_user",
    "list_users",
    "authenticate",
    "create_session",
    "get_session",
    "end_session",
    "ensure_demo_user",
    "secret_key",
    "pseudonym",
    "pseudonym_key",
    "DEMO_USERNAME",
    "SESSION_HOURS",
]

SECRET_FILE = "web-secret.key"
DEMO_PASSWORD_FILE = "web-demo-password.txt"
DEMO_USERNAME = "demo"
#: Idle-independent absolute lifetime of a sign-in (a working day plus margin).
SESSION_HOURS = 12
MIN_PASSWORD_LEN = 8
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
_hasher = PasswordHasher()


class Role(StrEnum):
    """What a signed-in user may see and change."""

    PHYSICIAN = "physician"  # reads identified data, edits lesions, downloads reports
    FELLOW = "fellow"  # reads identified data, no edits
    RESEARCHER = "researcher"  # pseudonymised data only, no edits
    ADMIN = "admin"  # everything, plus users and the audit log

    @property
    def sees_identity(self) -> bool:
        return self is not Role.RESEARCHER

    @property
    def can_edit(self) -> bool:
        return self in (Role.PHYSICIAN, Role.ADMIN)


@dataclass(frozen=True)
class UserInfo:
    pk: int
    username: str
    role: Role


@dataclass(frozen=True)
class SessionInfo:
    user: UserInfo
    csrf_token: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600; False if it already exists (another process won)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def secret_key(settings: Settings | None = None) -> bytes:
    """The workspace's 256-bit secret (created on first use, file mode 0600)."""
    settings = settings or get_settings()
    path = settings.home / SECRET_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(32).encode())
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise InputError(f"{path}: web secret is shorter than 32 characters; delete it to renew")
    return key


PSEUDONYM_KEY_FILE = "report-pseudonym.key"


def pseudonym_key(settings: Settings | None = None) -> bytes:
    """The installation's pseudonym key (32 random bytes, mode 0600), used by the web
    application and the reports alike."""
    settings = settings or get_settings()
    path = settings.home / PSEUDONYM_KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_bytes(32))
    return path.read_bytes()


def pseudonym(settings: Settings | None, patient_id: str, issuer: str = "") -> str:
    """Stable keyed pseudonym of a patient, e.g. ``PSN-3FA41C0B9D``.

    Same formula and key as the reports (:func:`oncohybrid.report.data.pseudonym`), so
    a researcher finds the same pseudonym in pages and PDFs. The issuer is appended only
    when present (IDs are unique per issuer, PS3.3 C.7.1.1).

    >>> pseudonym(settings, "PH7-001")  # doctest: +SKIP
    'PSN-...'
    """
    from oncohybrid.report.data import pseudonym as keyed_pseudonym

    message = patient_id if not issuer else f"{patient_id}^{issuer}"
    return keyed_pseudonym(message, pseudonym_key(settings))


def _check_username(username: str) -> None:
    if not _USERNAME_RE.match(username):
        raise InputError(
            f"user name {username!r}: use 2–64 letters, digits, '.', '_' or '-'"
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LEN:
        raise InputError(f"password: at least {MIN_PASSWORD_LEN} characters are required")


def _role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InputError(
            f"role must be one of {', '.join(r.value for r in Role)}, got {role!r}"
        ) from None


def add_user(settings: Settings | None, username: str, password: str, role: str | Role, *,
             actor: str = "cli") -> UserInfo:
    """Create an account; raises :class:`InputError` for a taken name or weak password."""
    _check_username(username)
    _check_password(password)
    r = _role(role)
    with session_scope(settings) as s:
        if s.scalar(sa.select(WebUser.id).where(WebUser.username == username)) is not None:
            raise InputError(f"user {username!r} already exists")
        u = WebUser(username=username, password_hash=_hasher.hash(password), role=r.value)
        s.add(u)
        s.flush()
        info = UserInfo(u.id, u.username, r)
    audit.record(settings, actor, "user.add", f"user:{username}", {"role": r.value})
    return info


def set_password(settings: Settings | None, username: str, password: str, *,
                 actor: str = "cli") -> None:
    _check_password(password)
    with session_scope(settings) as s:
        u = s.scalar(sa.select(WebUser).where(WebUser.username == username))
        if u is None:
            raise InputError(f"user {username!r} does not exist")
        u.password_hash = _hasher.hash(password)
        s.execute(sa.delete(WebSession).where(WebSession.user_pk == u.id))
    audit.record(settings, actor, "user.password", f"user:{username}")


def list_users(settings: Settings | None = None) -> list[dict]:
    with session_scope(settings) as s:
        return [
            {
                "username": u.username,
                "role": u.role,
                "active": u.active,
                "created_at": u.created_at.isoformat(timespec="seconds"),
                "last_login_at": u.last_login_at.isoformat(timespec="seconds")
                if u.last_login_at else None,
            }
            for u in s.scalars(sa.select(WebUser).order_by(WebUser.username))
        ]


def authenticate(settings: Settings | None, username: str, password: str) -> UserInfo | None:
    """The user if the password matches an active account, else ``None``.

    A missing account still costs one hash verification so that response time does not
    reveal which user names exist.
    """
    with session_scope(settings) as s:
        u = s.scalar(sa.select(WebUser).where(WebUser.username == username))
        stored = u.password_hash if u is not None and u.active else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if u is None or not u.active:
            return None
        if _hasher.check_needs_rehash(u.password_hash):
            u.password_hash = _hasher.hash(password)
        u.last_login_at = _utcnow()
        return UserInfo(u.id, u.username, Role(u.role))


_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _token_sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(settings: Settings | None, user: UserInfo) -> tuple[str, str]:
    """A new session for ``user``: ``(token, csrf_token)``; expired sessions are purged."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = _utcnow()
    with session_scope(settings) as s:
        s.execute(sa.delete(WebSession).where(WebSession.expires_at < now))
        s.add(WebSession(token_sha256=_token_sha(token), user_pk=user.pk, csrf_token=csrf,
                         created_at=now, expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
    return token, csrf


def get_session(settings: Settings | None, token: str) -> SessionInfo | None:
    """The live session of ``token`` (``None`` when unknown, expired or user disabled)."""
    with session_scope(settings) as s:
        row = s.execute(
            sa.select(WebSession, WebUser)
            .join(WebUser, WebSession.user_pk == WebUser.id)
            .where(WebSession.token_sha256 == _token_sha(token))
        ).first()
        if row is None:
            return None
        sess, u = row
        expires = sess.expires_at
        if expires.tzinfo is None:  # SQLite drops the zone
            expires = expires.replace(tzinfo=dt.UTC)
        if expires < _utcnow() or not u.active:
            return None
        return SessionInfo(UserInfo(u.id, u.username, Role(u.role)), sess.csrf_token)


def end_session(settings: Settings | None, token: str) -> None:
    with session_scope(settings) as s:
        s.execute(sa.delete(WebSession).where(WebSession.token_sha256 == _token_sha(token)))


def ensure_demo_user(settings: Settings | None = None) -> tuple[str, str]:
    """The demo physician account ``(username, password)``, created once per workspace.

    The generated password is kept in ``$ONCOHYBRID_HOME/web-demo-password.txt`` (mode
    0600) so that ``make demo`` can print it again; if that file is gone, the password is
    reset to a new one.
    """
    settings = settings or get_settings()
    pw_file = settings.home / DEMO_PASSWORD_FILE
    if not pw_file.exists():
        _write_private(pw_file, secrets.token_urlsafe(12).encode())
    password = pw_file.read_text().strip()
    with session_scope(settings) as s:
        exists = s.scalar(sa.select(WebUser.id).where(WebUser.username == DEMO_USERNAME))
    if exists is None:
        add_user(settings, DEMO_USERNAME, password, Role.PHYSICIAN, actor="demo")
    elif authenticate(settings, DEMO_USERNAME, password) is None:
        set_password(settings, DEMO_USERNAME, password, actor="demo")
    return DEMO_USERNAME, password
