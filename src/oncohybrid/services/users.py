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
- User names are case-insensitive (``phys`` and ``PHYS`` are one account): they are
  looked up by ``username_key``, the lower-cased name, which is unique.
- New passwords need :data:`MIN_PASSWORD_LEN` characters and a zxcvbn strength score of
  at least :data:`MIN_PASSWORD_SCORE` (Wheeler 2016, USENIX Security; the estimator
  matches common-password lists, dictionary words, keyboard patterns, dates and the user
  name), which refuses "password", "12345678" and "Password1234" (NIST SP 800-63B
  §3.1.1.2: check new passwords against lists of commonly used values).
- Failed sign-ins are counted per account (the case-folded name, whether or not it
  exists, so that the answer does not reveal which names exist) and per client address,
  in the database (``web_login_throttle``), so that the back-off survives restarts and
  holds across worker processes. After :data:`USER_FREE_FAILURES` failures of an account
  (:data:`CLIENT_FREE_FAILURES` of an address) further attempts are refused without
  checking the password for 30 s, doubling with each further failure up to 15 min
  (OWASP Authentication Cheat Sheet; NIST SP 800-63B §5.2.2 rate limiting). Every
  failure, lockout and refused attempt is audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_web import LoginThrottle, WebSession, WebUser

__all__ = [
    "Role",
    "UserInfo",
    "SessionInfo",
    "add_user",
    "list_users",
    "authenticate",
    "sign_in",
    "SignInResult",
    "check_password",
    "set_password",
    "set_active",
    "delete_user",
    "create_session",
    "get_session",
    "end_session",
    "ensure_demo_user",
    "secret_key",
    "pseudonym",
    "pseudonym_key",
    "pseudonym_uid",
    "DEMO_USERNAME",
    "SESSION_HOURS",
]

SECRET_FILE = "web-secret.key"
DEMO_PASSWORD_FILE = "web-demo-password.txt"
DEMO_USERNAME = "demo"
#: Idle-independent absolute lifetime of a sign-in (a working day plus margin).
SESSION_HOURS = 12
#: NIST SP 800-63B asks for at least 8 characters (15 for a password that is the only
#: factor in rev. 4); 12 with a strength estimate is the usual compromise for a clinical
#: application behind the hospital's network (see docs/web.md).
MIN_PASSWORD_LEN = 12
#: zxcvbn score 0..4; 3 = "safely unguessable: moderate protection from offline attacks".
MIN_PASSWORD_SCORE = 3
#: Failed sign-ins allowed before the account / the address is locked out.
USER_FREE_FAILURES = 5
CLIENT_FREE_FAILURES = 20
#: First lockout and its cap; each failure beyond the free ones doubles the lockout.
LOCK_BASE_S = 30
LOCK_MAX_S = 900
#: Failures older than this (since the last one) are forgotten.
FAILURE_MEMORY_S = 24 * 3600
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
_hasher = PasswordHasher()


class Role(StrEnum):
    """What a signed-in user may see and change."""

    PHYSICIAN = "physician"  # reads identified data, edits lesions, downloads reports
    FELLOW = "fellow"  # reads identified data, no edits
    RESEARCHER = "researcher"  # pseudonymised data only, no edits
    ADMIN = "admin"  # everything, plus users and the audit log
    MENTOR = "mentor"  # a senior physician who supervises fellows: a physician's rights
    # The fellowship programme's roles (issue #13) see no clinical page at all.
    APPLICANT = "applicant"  # their own application only
    REVIEWER = "reviewer"  # the applications assigned to them only
    DIRECTOR = "director"  # the programme director: calls, selection, the fellows' year

    @property
    def clinical(self) -> bool:
        """May open clinical pages (worklist, patients, images, reports) at all."""
        return self in (Role.PHYSICIAN, Role.FELLOW, Role.RESEARCHER, Role.ADMIN,
                        Role.MENTOR)

    @property
    def sees_identity(self) -> bool:
        return self.clinical and self is not Role.RESEARCHER

    @property
    def can_edit(self) -> bool:
        return self in (Role.PHYSICIAN, Role.ADMIN, Role.MENTOR)


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
    try:
        st = path.stat()
    except FileNotFoundError:
        _write_private(path, secrets.token_bytes(32))
        st = path.stat()
    # Cached per file identity (inode, size, mtime): a researcher's search computes one
    # pseudonym per patient, and reading the file each time dominated it. A replaced or
    # rewritten key file changes the identity and is read again.
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _PSEUDONYM_KEYS.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    key = path.read_bytes()
    _PSEUDONYM_KEYS[path] = (stamp, key)
    return key


#: Pseudonym key per key-file path, with the file identity it was read at.
_PSEUDONYM_KEYS: dict[Path, tuple[tuple[int, int, int], bytes]] = {}


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


def pseudonym_uid(uid: str, key: bytes) -> str:
    """Keyed pseudonymous UID of a Study/Series Instance UID: ``2.25.<integer>``.

    The same key and keyed hash as :func:`pseudonym` (HMAC-SHA-256, RFC 2104); the first
    128 bits of the digest are written as a UUID-derived UID (PS3.5 §B.2, at most 44
    characters), so it is a valid UID, stable per installation and not reversible
    without the key.
    """
    digest = hmac.new(key, b"uid:" + uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _check_username(username: str) -> None:
    if not _USERNAME_RE.match(username):
        raise InputError(
            f"user name {username!r}: use 2–64 letters, digits, '.', '_' or '-'"
        )


def username_key(username: str) -> str:
    """The case-folded key an account is looked up by (names are ASCII)."""
    return username.strip().lower()


def check_password(password: str, username: str | None = None) -> None:
    """Refuse a password that is short or easy to guess (see module docstring)."""
    if len(password) < MIN_PASSWORD_LEN:
        raise InputError(f"password: at least {MIN_PASSWORD_LEN} characters are required")
    if len(password) > 1024:
        raise InputError("password: at most 1024 characters")
    from zxcvbn import zxcvbn

    # zxcvbn's matching is super-linear in the length; 100 characters decide the score.
    inputs = [x for x in (username, "oncohybrid", "reading room", "hospital") if x]
    result = zxcvbn(password[:100], user_inputs=inputs)
    if result["score"] < MIN_PASSWORD_SCORE:
        fb = result.get("feedback") or {}
        why = fb.get("warning") or "it follows a common pattern"
        hint = " ".join(fb.get("suggestions") or [])
        raise InputError(
            f"password: too easy to guess ({why.rstrip('.')}; strength "
            f"{result['score']}/4, at least {MIN_PASSWORD_SCORE} needed). "
            + (hint or "Use a longer phrase of unrelated words.")
        )


_check_password = check_password


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
    check_password(password, username)
    r = _role(role)
    key = username_key(username)
    with session_scope(settings) as s:
        taken = s.scalar(sa.select(WebUser.username).where(WebUser.username_key == key))
        if taken is not None:
            also = "" if taken == username else f" as {taken!r} (names ignore case)"
            raise InputError(f"user {username!r} already exists{also}")
        u = WebUser(username=username, username_key=key,
                    password_hash=_hasher.hash(password), role=r.value)
        s.add(u)
        s.flush()
        info = UserInfo(u.id, u.username, r)
    audit.record(settings, actor, "user.add", f"user:{username}", {"role": r.value})
    return info


def _user(s: Session, username: str) -> WebUser:
    u = s.scalar(sa.select(WebUser).where(WebUser.username_key == username_key(username)))
    if u is None:
        raise InputError(f"user {username!r} does not exist")
    return u


def _clear_throttle(s: Session, username: str) -> None:
    s.execute(sa.delete(LoginThrottle).where(LoginThrottle.scope == "user",
                                             LoginThrottle.key == username_key(username)))


def set_password(settings: Settings | None, username: str, password: str, *,
                 actor: str = "cli") -> None:
    """Reset a password: ends the account's sessions and lifts its sign-in lockout."""
    with session_scope(settings) as s:
        u = _user(s, username)
        check_password(password, u.username)
        u.password_hash = _hasher.hash(password)
        s.execute(sa.delete(WebSession).where(WebSession.user_pk == u.id))
        _clear_throttle(s, u.username)
        name = u.username
    audit.record(settings, actor, "user.password", f"user:{name}")


def _other_active_admins(s: Session, u: WebUser) -> int:
    return int(s.scalar(sa.select(sa.func.count(WebUser.id)).where(
        WebUser.role == Role.ADMIN.value, WebUser.active, WebUser.id != u.id)) or 0)


def set_active(settings: Settings | None, username: str, active: bool, *,
               actor: str = "cli") -> UserInfo:
    """Disable (sessions end at once) or re-enable an account (its lockout is lifted).

    The last active administrator cannot be disabled.
    """
    with session_scope(settings) as s:
        u = _user(s, username)
        if not active and u.role == Role.ADMIN.value and u.active \
                and _other_active_admins(s, u) == 0:
            raise InputError(f"user {u.username!r} is the last active admin; "
                             "enable or add another admin first")
        u.active = active
        if active:
            _clear_throttle(s, u.username)
        else:
            s.execute(sa.delete(WebSession).where(WebSession.user_pk == u.id))
        info = UserInfo(u.id, u.username, Role(u.role))
    audit.record(settings, actor, "user.enable" if active else "user.disable",
                 f"user:{info.username}")
    return info


def delete_user(settings: Settings | None, username: str, *, actor: str = "cli") -> None:
    """Delete an account and its sessions (its audit entries stay, by name).

    The last active administrator cannot be deleted.
    """
    with session_scope(settings) as s:
        u = _user(s, username)
        if u.role == Role.ADMIN.value and u.active and _other_active_admins(s, u) == 0:
            raise InputError(f"user {u.username!r} is the last active admin; "
                             "add another admin first")
        name = u.username
        s.execute(sa.delete(WebSession).where(WebSession.user_pk == u.id))
        _clear_throttle(s, name)
        s.delete(u)
    audit.record(settings, actor, "user.delete", f"user:{name}")


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
    if len(password) > 1024:  # Argon2 of megabytes would be a denial of service
        password = ""
    with session_scope(settings) as s:
        u = s.scalar(sa.select(WebUser).where(WebUser.username_key == username_key(username)))
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


@dataclass(frozen=True)
class SignInResult:
    """Outcome of :func:`sign_in`: the user, or why not."""

    user: UserInfo | None
    #: > 0: refused without checking the password; seconds until the next attempt.
    retry_after_s: int = 0


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is not None and t.tzinfo is None:  # SQLite drops the zone
        return t.replace(tzinfo=dt.UTC)
    return t


def _lock_seconds(failures: int, free: int) -> int:
    if failures < free:
        return 0
    return min(LOCK_BASE_S * 2 ** min(failures - free, 20), LOCK_MAX_S)


def _throttle_keys(username: str, client: str | None) -> list[tuple[str, str, int]]:
    return [("user", username_key(username)[:255], USER_FREE_FAILURES),
            ("client", (client or "unknown")[:255], CLIENT_FREE_FAILURES)]


def _count_failure(s: Session, scope: str, key: str, free: int,
                   now: dt.datetime) -> tuple[int, int]:
    """Add one failure; ``(failures, lockout seconds started now or 0)``."""
    row = s.scalar(sa.select(LoginThrottle).where(LoginThrottle.scope == scope,
                                                  LoginThrottle.key == key)
                   .with_for_update())
    if row is None:
        try:
            with s.begin_nested():
                row = LoginThrottle(scope=scope, key=key, failures=0, last_failure_at=now)
                s.add(row)
                s.flush()
        except IntegrityError:  # another worker inserted it first
            row = s.scalar(sa.select(LoginThrottle).where(LoginThrottle.scope == scope,
                                                          LoginThrottle.key == key)
                           .with_for_update())
    assert row is not None
    last = _aware(row.last_failure_at)
    if last is not None and (now - last).total_seconds() > FAILURE_MEMORY_S:
        row.failures = 0
    row.failures = (row.failures or 0) + 1
    row.last_failure_at = now
    lock = _lock_seconds(row.failures, free)
    if lock:
        row.locked_until = now + dt.timedelta(seconds=lock)
    return row.failures, lock


def sign_in(settings: Settings | None, username: str, password: str,
            client: str | None = None) -> SignInResult:
    """Throttled, audited sign-in (see module docstring).

    While the account name or the client address is locked out, the attempt is refused
    without verifying the password (``retry_after_s`` > 0) and audited as
    ``login.locked``; a failure is audited as ``login.failed`` and, when it starts a
    lockout, ``login.lockout``. A success resets the account's counter (not the
    address's: one valid account must not unlock an address that guesses others).
    """
    now = _utcnow()
    name = username[:64]
    keys = _throttle_keys(username, client)
    with session_scope(settings) as s:
        rows = s.execute(sa.select(LoginThrottle.scope, LoginThrottle.locked_until).where(
            sa.or_(*[(LoginThrottle.scope == sc) & (LoginThrottle.key == k)
                     for sc, k, _ in keys]))).all()
    wait = max([int((lu - now).total_seconds()) + 1 for _, until in rows
                if (lu := _aware(until)) is not None and lu > now], default=0)
    if wait:
        scopes = sorted(sc for sc, until in rows if (lu := _aware(until)) and lu > now)
        audit.record(settings, name, "login.locked", None,
                     {"retry_after_s": wait, "locked": scopes}, client)
        return SignInResult(None, wait)
    user = authenticate(settings, username, password)
    if user is not None:
        with session_scope(settings) as s:
            _clear_throttle(s, username)
        return SignInResult(user)
    lockouts: dict[str, int] = {}
    failures: dict[str, int] = {}
    with session_scope(settings) as s:
        for scope, key, free in keys:
            n, lock = _count_failure(s, scope, key, free, now)
            failures[scope] = n
            if lock:
                lockouts[scope] = lock
    audit.record(settings, name, "login.failed", None, {"failures": failures}, client)
    for scope, lock in lockouts.items():
        audit.record(settings, name, "login.lockout",
                     f"user:{name}" if scope == "user" else "client",
                     {"seconds": lock, "failures": failures[scope]}, client)
    return SignInResult(None)


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
        exists = s.scalar(sa.select(WebUser.id).where(WebUser.username_key == DEMO_USERNAME))
    if exists is None:
        add_user(settings, DEMO_USERNAME, password, Role.PHYSICIAN, actor="demo")
    elif authenticate(settings, DEMO_USERNAME, password) is None:
        set_password(settings, DEMO_USERNAME, password, actor="demo")
    return DEMO_USERNAME, password
