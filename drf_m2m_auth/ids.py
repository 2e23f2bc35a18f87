"""Identifiers the operator types and the logs print: client ids, resource names, jti digests.

Pure: imports neither Django nor another module of the package.

- Client ids and resource names refuse control and format characters (Unicode categories Cc and
  Cf: NUL, newline, bidi overrides such as U+202E, zero-width joiners): a newline could forge an
  audit-log line and a bidi override makes an admin read another name than the one stored.
- A jti may be any JSON string (RFC 7519 4.1.7): the deny-list stores its SHA-256 (UTF-8, lone
  surrogates kept as they are), so a jti with spaces, non-ASCII or of any length can be revoked.
- ``escape`` renders any such string safely for a log line, a message or the admin.
"""

from __future__ import annotations

import hashlib
import unicodedata

__all__ = ["MAX_CLIENT_ID_LENGTH", "JTI_DISPLAY_LENGTH", "client_id_problem", "escape", "jti_digest"]

MAX_CLIENT_ID_LENGTH = 255  # models.Client.client_id's column
JTI_DISPLAY_LENGTH = 100


def _forbidden(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") or char in "\u2028\u2029"


def escape(text: str, limit: int | None = None) -> str:
    """``text`` with control/format characters as ``\\uXXXX`` escapes, cut to ``limit`` characters
    (an ellipsis marks the cut). Backslashes are doubled so an escape cannot be forged."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif _forbidden(char) or "\ud800" <= char <= "\udfff":
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    result = "".join(out)
    if limit is not None and len(result) > limit:
        result = result[: limit - 1] + "\u2026"
    return result


def client_id_problem(client_id: str) -> str | None:
    """Why ``client_id`` cannot be registered, or None if it can."""
    if not client_id or not client_id.strip():
        return "the client id is empty"
    if client_id != client_id.strip():
        return "the client id has surrounding spaces"
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        return f"the client id is {len(client_id)} characters long, at most {MAX_CLIENT_ID_LENGTH} are stored"
    bad = sorted({f"U+{ord(c):04X}" for c in client_id if _forbidden(c) or "\ud800" <= c <= "\udfff"})
    if bad:
        return f"the client id contains control or format characters ({', '.join(bad)})"
    return None


def jti_digest(jti: str) -> str:
    """SHA-256 (64 hex digits) of a jti as the token carries it."""
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()
