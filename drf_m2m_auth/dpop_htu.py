"""DPoP ``htu`` comparison (RFC 9449 4.3 (9)) with RFC 3986 6.2.2 / 6.2.3 normalisation. Pure.

Used by :mod:`drf_m2m_auth.dpop` to compare a proof's ``htu`` with the request's target URI.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["normalize_htu"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _normalise_percent(path: str) -> str:
    # RFC 3986 6.2.2.1 / 6.2.2.2: hex digits upper case, unreserved characters decoded.
    def fix(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, path)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4 (6.2.2.3)
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/".join(output)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


def normalize_htu(url: Any) -> str | None:
    """scheme://host[:port]/path, normalised; query and fragment dropped; None if not an http(s) URL."""
    if type(url) is not str or not url.isascii() or any(c in url for c in " \t\r\n\\"):
        return None
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{_remove_dot_segments(_normalise_percent(parts.path or '/'))}"
