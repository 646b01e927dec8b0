"""A remote DICOM node: a DIMSE peer (AE title, host, port) or a DICOMweb service.

Pure data with validation at construction, so a misconfigured node is refused when
it is added rather than when a PACS administrator first needs it. AE titles follow
PS3.5 §6.2 (VR AE: at most 16 characters, no backslash or control characters, not
all spaces); the DICOMweb base URL is the service root of PS3.18 §10 (e.g.
``http://pacs:8042/dicom-web``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlparse

from oncohybrid.errors import InputError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AuthKind(StrEnum):
    """How a DICOMweb node authenticates us (HTTP, RFC 7617 basic / RFC 6750 bearer)."""

    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"


class RetrieveMethod(StrEnum):
    """How studies are pulled from a DIMSE node (PS3.4 C.4.2 C-MOVE, C.4.3 C-GET)."""

    MOVE = "move"
    GET = "get"


def validate_ae_title(value: str, what: str = "AE title") -> str:
    """Return `value` stripped if it is a valid AE title (PS3.5 §6.2, VR AE), else raise."""
    ae = value.strip()
    if not ae or len(ae) > 16 or "\\" in ae or any(ord(c) < 32 or ord(c) > 126 for c in ae):
        raise InputError(
            f"{what} {value!r} is not a valid AE title: 1 to 16 printable ASCII characters, "
            "no backslash (DICOM PS3.5 §6.2)"
        )
    return ae


def validate_port(value: int, what: str = "port") -> int:
    if not 1 <= int(value) <= 65535:
        raise InputError(f"{what} {value} is out of range 1..65535")
    return int(value)


@dataclass(frozen=True)
class PacsNode:
    """One configured remote node.

    Exactly one of the two addressings is set: DIMSE (``ae_title`` + ``host`` + ``port``)
    or DICOMweb (``url``). ``accept_store`` puts a DIMSE node on the listener's
    allow-list (its AE title *and* host must match an incoming association).
    The secret of a DICOMweb node is either stored (``secret``) or read at use time
    from the environment variable named by ``secret_env`` (preferred).
    """

    name: str
    ae_title: str | None = None
    host: str | None = None
    port: int | None = None
    url: str | None = None
    auth: AuthKind = AuthKind.NONE
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    accept_store: bool = False
    retrieve: RetrieveMethod = RetrieveMethod.MOVE
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name or ""):
            raise InputError(
                f"node name {self.name!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        object.__setattr__(self, "auth", AuthKind(self.auth))
        object.__setattr__(self, "retrieve", RetrieveMethod(self.retrieve))
        dimse = any(v is not None for v in (self.ae_title, self.host, self.port))
        if dimse and self.url:
            raise InputError(
                f"node {self.name!r}: give either --ae/--host/--port (DIMSE) or --url "
                "(DICOMweb), not both; add two nodes for a PACS that offers both"
            )
        if not dimse and not self.url:
            raise InputError(f"node {self.name!r}: needs --ae, --host and --port, or --url")
        if dimse:
            if self.ae_title is None or self.host is None or self.port is None:
                raise InputError(f"node {self.name!r}: a DIMSE node needs --ae, --host and --port")
            object.__setattr__(self, "ae_title", validate_ae_title(self.ae_title))
            object.__setattr__(self, "port", validate_port(self.port))
            if self.auth is not AuthKind.NONE:
                raise InputError(f"node {self.name!r}: --auth applies to DICOMweb nodes only")
        else:
            parsed = urlparse(self.url or "")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InputError(
                    f"node {self.name!r}: URL {self.url!r} must be http(s)://host[:port]/path"
                )
            if self.accept_store:
                raise InputError(
                    f"node {self.name!r}: --accept-store needs a DIMSE node (AE title and host)"
                )
            object.__setattr__(self, "url", (self.url or "").rstrip("/"))
        if self.auth is AuthKind.BASIC and not self.username:
            raise InputError(f"node {self.name!r}: basic authentication needs --user")
        if self.auth is not AuthKind.NONE and not (self.secret or self.secret_env):
            raise InputError(
                f"node {self.name!r}: {self.auth.value} authentication needs --secret-env "
                "(environment variable holding the password/token) or --secret"
            )

    @property
    def is_dicomweb(self) -> bool:
        return self.url is not None

    @property
    def address(self) -> str:
        """Where the node is, for listings and messages (no credentials)."""
        if self.url:
            return self.url
        return f"{self.ae_title}@{self.host}:{self.port}"

    def resolve_secret(self) -> str | None:
        """The password/token, from the environment when ``secret_env`` is set."""
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if not value:
                from oncohybrid.errors import PacsError

                raise PacsError(
                    f"node {self.name!r}: environment variable {self.secret_env} "
                    "(its DICOMweb secret) is not set"
                )
            return value
        return self.secret

    def public_dict(self) -> dict[str, object]:
        """JSON-ready description without the secret."""
        return {
            "name": self.name,
            "kind": "dicomweb" if self.is_dicomweb else "dimse",
            "ae_title": self.ae_title,
            "host": self.host,
            "port": self.port,
            "url": self.url,
            "auth": self.auth.value,
            "username": self.username,
            "secret_env": self.secret_env,
            "has_secret": bool(self.secret),
            "accept_store": self.accept_store,
            "retrieve": self.retrieve.value,
            "description": self.description,
        }
