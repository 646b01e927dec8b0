"""Certificate verification codes: an HMAC-SHA-256 signature over the certificate's content.

The content (fellow, programme, host, school, dates, serial) is serialised canonically —
JSON with sorted keys, no insignificant white space, UTF-8 (the JSON Canonicalization
Scheme's rules for the strings and objects used here, RFC 8785 §3.2) — and signed with
HMAC-SHA-256 (RFC 2104, FIPS 198-1) under the workspace's certificate key. The code
printed on the certificate is ``<serial>-<signature>``, the signature's first 160 bits in
RFC 4648 base32 (32 characters, grouped by 4 for reading aloud). Verifying recomputes the
signature over the stored content, so an altered code, an altered stored content or a
code made without the key are all rejected; a database lookup alone does not validate.

>>> key = b"k" * 32
>>> content = {"serial": "ESOR21-0001", "fellow": "Dr A"}
>>> code = make_code(key, content)
>>> code.startswith("ESOR21-0001-") and verify_code(key, code, content)
True
>>> verify_code(key, code[:-1] + ("A" if code[-1] != "A" else "B"), content)
False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

__all__ = ["canonical", "signature", "make_code", "split_code", "verify_code", "SIG_CHARS"]

#: Characters of the printed signature (160 bits of base32).
SIG_CHARS = 32
_SERIAL = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")


def canonical(content: dict[str, Any]) -> bytes:
    """Sorted keys, compact separators, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def signature(key: bytes, content: dict[str, Any]) -> str:
    digest = hmac.new(key, b"oncohybrid-certificate-v1\x00" + canonical(content),
                      hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode("ascii")  # 20 bytes -> 32 chars, no '='


def _grouped(sig: str) -> str:
    return "-".join(sig[i:i + 4] for i in range(0, len(sig), 4))


def make_code(key: bytes, content: dict[str, Any]) -> str:
    """``<serial>-XXXX-XXXX-…`` (8 groups of 4)."""
    serial = content["serial"]
    if not _SERIAL.match(serial):
        raise ValueError(f"serial {serial!r}: upper-case letters, digits and '-' only")
    return f"{serial}-{_grouped(signature(key, content))}"


def split_code(code: str) -> tuple[str, str] | None:
    """(serial, signature) of a code as typed (case, spaces and dashes are forgiven in the
    signature part); None if it cannot be a code."""
    text = re.sub(r"\s+", "", code).upper()
    parts = text.split("-")
    if len(parts) < 9:
        return None
    serial = "-".join(parts[:-8])
    sig = "".join(parts[-8:])
    if not _SERIAL.match(serial) or not re.fullmatch(r"[A-Z2-7]{32}", sig):
        return None
    return serial, sig


def verify_code(key: bytes, code: str, content: dict[str, Any]) -> bool:
    """True if ``code`` is the signature of ``content`` (constant-time comparison)."""
    parts = split_code(code)
    if parts is None or parts[0] != content.get("serial"):
        return False
    return hmac.compare_digest(parts[1], signature(key, content))
