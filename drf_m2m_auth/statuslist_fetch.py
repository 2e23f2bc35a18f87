"""Token Status List, the request (draft-ietf-oauth-status-list-20 8.1/8.2): GET the Status List
Token with ``Accept: application/statuslist+jwt``. Pure: no Django.

No redirect is followed (a 3xx is an unobtainable list); the body is bounded as sent and after any
gzip/deflate Content-Encoding, and the whole exchange by a timeout. What the body means is
statuslist.py's.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from typing import Any

from .errors import JWKSError
from .fetch import check_url, parse_max_age
from .statuslist import MEDIA_TYPE, StatusListInvalid, StatusListUnobtainable

__all__ = ["fetch_status_list"]


def fetch_status_list(
    url: str,
    *,
    timeout: float = 5.0,
    max_bytes: int = 1024 * 1024,
    insecure_hosts: Iterable[str] = (),
    session: Any = None,
) -> tuple[str, int | None]:
    """GET the Status List Token: (compact JWS text, Cache-Control max-age), or StatusListUnobtainable.

    No redirect is followed; the body is bounded by ``max_bytes`` both as sent and after any
    gzip/deflate Content-Encoding (8.2 recommends one), which is undone here with the same bound,
    and the whole exchange by ``timeout``.
    """
    import requests
    import urllib3

    try:
        check_url(url, insecure_hosts)
    except JWKSError as exc:
        raise StatusListUnobtainable(str(exc)) from exc
    getter = session or requests
    deadline = time.monotonic() + timeout
    headers = {"Accept": MEDIA_TYPE, "Accept-Encoding": "gzip, deflate"}
    try:
        with getter.get(url, timeout=timeout, stream=True, allow_redirects=False, headers=headers) as resp:
            if resp.status_code != 200:
                raise StatusListUnobtainable(f"HTTP {resp.status_code} from the status list endpoint")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise StatusListInvalid(f"status list larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in resp.raw.stream(16384, decode_content=False):  # decoded below, with a bound
                body += chunk
                if len(body) > max_bytes:
                    raise StatusListInvalid(f"status list larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise StatusListUnobtainable(f"status list not read within {timeout} s")
            encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
            max_age = parse_max_age(resp.headers.get("Cache-Control"))
    except requests.RequestException as exc:
        raise StatusListUnobtainable(f"cannot fetch the status list: {type(exc).__name__}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # raised by raw.stream(): ReadTimeoutError...
        raise StatusListUnobtainable(f"cannot read the status list: {type(exc).__name__}") from exc
    if encoding in ("gzip", "x-gzip", "deflate"):
        data = _decode_content(bytes(body), max_bytes)
    elif encoding in ("identity", ""):
        data = bytes(body)
    else:
        raise StatusListInvalid(f"unsupported Content-Encoding {encoding[:20]!r}")
    try:
        return data.decode("ascii").strip(), max_age
    except UnicodeDecodeError as exc:
        raise StatusListInvalid("the status list response is not a compact JWS") from exc


def _decode_content(body: bytes, max_bytes: int) -> bytes:
    """gzip or zlib-wrapped deflate (zlib detects which), at most ``max_bytes`` of output."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise StatusListInvalid("the status list response's Content-Encoding is corrupt") from exc
    if len(data) > max_bytes:
        raise StatusListInvalid(f"status list larger than {max_bytes} bytes once decoded")
    return data
