"""Sign-in cookies, CSRF checks and role guards of the web application.

- The session cookie holds the random session token signed with the workspace secret
  (``itsdangerous``; ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when served over HTTPS);
  the server keeps only its SHA-256 (:mod:`oncohybrid.services.users`).
- Every state-changing request (POST/PUT/PATCH/DELETE) must carry the session's CSRF
  token, in the ``csrf_token`` form field or the ``X-CSRF-Token`` header (synchroniser
  token pattern, OWASP CSRF Prevention Cheat Sheet); a cross-site ``Origin`` is refused
  as well. The sign-in form, which has no session yet, uses a signed double-submit
  cookie instead.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from oncohybrid.services.users import SESSION_HOURS, Role, SessionInfo, get_session

SESSION_COOKIE = "oh_session"
LOGIN_CSRF_COOKIE = "oh_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class NotAuthenticated(Exception):
    """Raised by :func:`current_session`; pages redirect to sign-in, the API answers 401."""


def signer(request: Request) -> URLSafeTimedSerializer:
    return request.app.state.signer


def cookie_value(request: Request, token: str) -> str:
    return signer(request).dumps(token)


def token_from_cookie(request: Request) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return signer(request).loads(raw, max_age=SESSION_HOURS * 3600)
    except BadSignature:
        return None


def current_session(request: Request) -> SessionInfo:
    """The signed-in session of the request, else :class:`NotAuthenticated`."""
    cached = getattr(request.state, "session", None)
    if cached is not None:
        return cached
    token = token_from_cookie(request)
    sess = get_session(request.app.state.settings, token) if token else None
    if sess is None:
        raise NotAuthenticated()
    request.state.session = sess
    return sess


# The role guards below read nothing but the session: they are ``async`` so that FastAPI
# calls them on the event loop instead of handing each to the thread pool (a thread hop
# per guard and request, costly when 4 requests share the GIL).


async def clinical_session(sess: SessionInfo = Depends(current_session)) -> SessionInfo:
    """The session of a user whose role may open clinical pages (else 403): applicants,
    reviewers and the programme director of the fellowship see no patient data."""
    if not sess.user.role.clinical:
        raise HTTPException(status_code=403, detail="your role does not open clinical pages")
    return sess


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        # Browsers send Origin on cross-site POSTs; its absence means same-origin or a
        # non-browser client, which still needs the token below.
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "")


async def _submitted_token(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def csrf_session(request: Request,
                       sess: SessionInfo = Depends(current_session)) -> SessionInfo:
    """The session, after checking the CSRF token of a state-changing request (403)."""
    if request.method in _UNSAFE:
        token = await _submitted_token(request)
        if not _same_origin(request) or not token or not hmac.compare_digest(
            token, sess.csrf_token
        ):
            raise HTTPException(status_code=403, detail="CSRF token missing or invalid")
    return sess


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


async def check_login_csrf(request: Request) -> None:
    """Double-submit check of the sign-in form (no session exists yet)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    token = await _submitted_token(request) or ""
    if not cookie or not _same_origin(request) or not hmac.compare_digest(cookie, token):
        raise HTTPException(status_code=403, detail="CSRF token missing or invalid")


def require_roles(*roles: Role):
    """Dependency factory: the session if its role is one of ``roles`` (else 403)."""

    async def dep(sess: SessionInfo = Depends(current_session)) -> SessionInfo:
        if sess.user.role not in roles:
            raise HTTPException(status_code=403, detail="your role does not allow this")
        return sess

    return dep


async def require_edit(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
    """CSRF-checked session of a user allowed to change clinical data."""
    if not sess.user.role.can_edit:
        raise HTTPException(status_code=403, detail="your role does not allow changes")
    return sess


def safe_next(target: str | None) -> str:
    """A local redirect target only (open-redirect protection)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
