"""Token Status List (draft-ietf-oauth-status-list-20): the status claim, the list, its token, its fetch.

Pure core: no Django. What this module implements, by section of draft 20:

- 6.1/6.2 the Referenced Token's ``status`` claim: ``{"status_list": {"idx": N, "uri": "..."}}``
  (:func:`parse_status_claim`);
- 4.1/4.2 the Status List: ``bits`` of 1, 2, 4 or 8, ``lst`` a base64url ZLIB-compressed byte
  array whose statuses are packed from the least significant bit of each byte
  (:class:`StatusList`, inflated with a bound: a zip bomb costs milliseconds, not memory);
- 5.1 the Status List Token in JWT form: ``typ`` statuslist+jwt, ``sub`` equal to the
  Referenced Token's ``uri``, ``iat`` required, ``exp`` checked when present, ``ttl`` read
  (:func:`verify_status_list_token`), signed with a key of the Referenced Token's issuer,
  asymmetric algorithms only (13.4 allows MACs; this API never accepts them);
- 8.1/8.2 the request: GET with ``Accept: application/statuslist+jwt``; redirects are not followed
  (a 3xx is an unobtainable list), the body and the time are bounded
  (:func:`drf_m2m_auth.statuslist_fetch.fetch_status_list`).

Not implemented: CWT forms, aggregation (9), historical resolution (8.4), X.509 EKU (10).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature

from .errors import InvalidToken, JWKSError, KeysUnavailable, ServiceUnavailable
from .fetch import check_url
from .jose import SIGNATURE_VERIFIERS, b64url_decode, is_numeric_date, json_object
from .keys import VerifyKey

DRAFT = "draft-ietf-oauth-status-list-20"
MEDIA_TYPE = "application/statuslist+jwt"
LIST_TYPES = frozenset({"statuslist+jwt", MEDIA_TYPE})
VALID, INVALID, SUSPENDED = 0, 1, 2
ALLOWED_BITS = (1, 2, 4, 8)
MAX_IDX = 2**53  # a JSON integer beyond this is not an index any list could have

KeyResolver = Callable[[str | None, str], VerifyKey]

__all__ = [
    "DRAFT",
    "MEDIA_TYPE",
    "LIST_TYPES",
    "VALID",
    "INVALID",
    "SUSPENDED",
    "ALLOWED_BITS",
    "MAX_IDX",
    "KeyResolver",
    "StatusListInvalid",
    "StatusListUnobtainable",
    "StatusListUnavailable",
    "status_unknown",
    "refusal",
    "StatusRef",
    "parse_status_claim",
    "check_list_uri",
    "StatusList",
    "inflate",
    "VerifiedList",
    "verify_status_list_token",
]


class StatusListInvalid(Exception):
    """The Status List Token was obtained but cannot be trusted or read (bad signature, sub, lst...)."""


class StatusListUnobtainable(Exception):
    """The Status List Token could not be fetched (network, HTTP status, size, time, keys down)."""


def status_unknown(description: str) -> InvalidToken:
    return InvalidToken(description, reason="token_status_unknown", claim="status")


class StatusListUnavailable(ServiceUnavailable):
    """The token's status list cannot be obtained and STATUS_LIST_UNAVAILABLE is "reject": 503."""

    default_reason = "token_status_unavailable"

    def __init__(self, description: str, *, retry_after: int = 5, reason: str | None = None):
        super().__init__(description, retry_after=retry_after, reason=reason)


def refusal(value: int | None) -> InvalidToken:
    if value == INVALID:
        return InvalidToken("The token has been revoked by its issuer.", reason="token_status_invalid")
    if value == SUSPENDED:
        return InvalidToken("The token is suspended by its issuer.", reason="token_status_suspended")
    if value is None:
        return status_unknown("The token's status list index is outside its status list.")
    return status_unknown("The token's status in its issuer's status list is not VALID.")


class StatusRef:
    """A Referenced Token's pointer into a list: ``uri`` and ``idx`` (validated types)."""

    __slots__ = ("uri", "idx")

    def __init__(self, uri: str, idx: int):
        self.uri, self.idx = uri, idx


def parse_status_claim(claims: dict[str, Any]) -> StatusRef | None:
    """The ``status.status_list`` reference, None without one, InvalidToken when it is malformed.

    A ``status`` object without ``status_list`` names another mechanism (6.1): None. A negative
    or non-integer ``idx`` or a non-string ``uri`` is ``token_status_unknown`` (8.3 step 1).
    """
    status = claims.get("status")
    if status is None:
        return None
    if type(status) is not dict:
        raise status_unknown("The token's status claim is not an object.")
    ref = status.get("status_list")
    if ref is None:
        return None
    if type(ref) is not dict:
        raise status_unknown("The token's status_list is not an object.")
    idx, uri = ref.get("idx"), ref.get("uri")
    if type(idx) is not int or not 0 <= idx <= MAX_IDX:
        raise status_unknown("The token's status_list idx is not a non-negative integer.")
    if type(uri) is not str or not uri:
        raise status_unknown("The token's status_list uri is not a string.")
    return StatusRef(uri, idx)


def check_list_uri(uri: str, allowed_hosts: Iterable[str], insecure_hosts: Iterable[str] = ()) -> None:
    """https on an allowed host (loopback http as the JWKS rules allow); else InvalidToken.

    Checked before any fetch: no token can make this API fetch a URL its issuer's entry does not allow.
    """
    try:
        check_url(uri, insecure_hosts)
        host = urlsplit(uri).hostname
    except (JWKSError, ValueError):
        raise status_unknown("The token's status list uri is not an allowed https URL.") from None
    if host is None or host.lower() not in {h.lower() for h in allowed_hosts}:
        raise status_unknown("The token's status list uri is on a host not allowed for its issuer.")


class StatusList:
    """A decoded Status List: bytes in memory; a status read is a byte index and two bit operations."""

    __slots__ = ("bits", "data", "size", "_per_byte", "_mask")

    def __init__(self, bits: int, data: bytes):
        if bits not in ALLOWED_BITS:
            raise StatusListInvalid("bits is not 1, 2, 4 or 8")
        self.bits, self.data = bits, bytes(data)
        self._per_byte = 8 // bits
        self._mask = (1 << bits) - 1
        self.size = len(self.data) * self._per_byte

    def status(self, idx: int) -> int | None:
        """The status value at ``idx`` (statuses packed from the least significant bit), None out of range."""
        if not 0 <= idx < self.size:
            return None
        per_byte = self._per_byte
        return (self.data[idx // per_byte] >> ((idx % per_byte) * self.bits)) & self._mask

    @classmethod
    def from_json(cls, obj: Any, *, max_inflated: int) -> StatusList:
        """The ``status_list`` object of a Status List Token (4.2): ``bits`` and ``lst``."""
        if type(obj) is not dict:
            raise StatusListInvalid("status_list is not an object")
        bits, lst = obj.get("bits"), obj.get("lst")
        if type(bits) is not int or bits not in ALLOWED_BITS:
            raise StatusListInvalid("bits is not 1, 2, 4 or 8")
        if type(lst) is not str:
            raise StatusListInvalid("lst is not a string")
        try:
            compressed = b64url_decode(lst)
        except (ValueError, UnicodeError) as exc:
            raise StatusListInvalid("lst is not base64url") from exc
        return cls(bits, inflate(compressed, max_inflated))


def inflate(compressed: bytes, max_bytes: int) -> bytes:
    """ZLIB (RFC 1950) inflate of a complete stream, refusing more than ``max_bytes`` of output.

    ``max_length`` stops the decompressor one byte past the bound, so a zip bomb costs the time
    to produce ``max_bytes``, never its full size.
    """
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise StatusListInvalid("lst is not a ZLIB stream") from exc
    if len(data) > max_bytes:
        raise StatusListInvalid(f"lst inflates to more than {max_bytes} bytes")
    if not inflater.eof or inflater.unused_data:
        raise StatusListInvalid("lst is not one complete ZLIB stream")
    return data


def _json_object(segment: str) -> dict[str, Any]:
    return json_object(b64url_decode(segment))


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if not is_numeric_date(value):  # jose: the one NumericDate rule
        raise StatusListInvalid(f"{name} is not a valid number")
    return float(value)


class VerifiedList:
    """A verified Status List Token: the list, and the token's ``exp``/``ttl`` for caching."""

    __slots__ = ("status_list", "exp", "ttl", "iat")

    def __init__(self, status_list: StatusList, exp: float | None, ttl: float | None, iat: float):
        self.status_list, self.exp, self.ttl, self.iat = status_list, exp, ttl, iat


def verify_status_list_token(
    raw: str,
    *,
    uri: str,
    issuer: str,
    key_resolver: KeyResolver,
    algorithms: Iterable[str],
    now: float,
    leeway: float = 0,
    max_inflated: int = 4 * 1024 * 1024,
) -> VerifiedList:
    """Verify a Status List Token (5.1, 8.3) for the Referenced Token's ``uri`` and ``issuer``.

    Raises StatusListInvalid for anything that makes the list untrustworthy or unreadable, and
    StatusListUnobtainable when the issuer's keys cannot be obtained.
    """
    if type(raw) is not str or not raw.isascii():
        raise StatusListInvalid("not a compact JWS")
    try:
        header_b64, payload_b64, signature_b64 = raw.split(".")
        header = _json_object(header_b64)
        claims = _json_object(payload_b64)
        signature = b64url_decode(signature_b64)
    except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
        raise StatusListInvalid("not a compact JWS of JSON objects") from exc
    alg = header.get("alg")
    # RFC 8725 3.1: an allow-list of asymmetric algorithms; "none" and HS* are never in it.
    if type(alg) is not str or alg not in SIGNATURE_VERIFIERS or alg not in set(algorithms):
        raise StatusListInvalid("signing algorithm not allowed")
    typ = header.get("typ")
    if type(typ) is not str or typ.lower() not in LIST_TYPES:
        raise StatusListInvalid("typ is not statuslist+jwt")
    if "crit" in header:
        raise StatusListInvalid("critical header parameters are not understood")
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        raise StatusListInvalid("kid is not a string")
    try:
        key = key_resolver(kid, alg)
    except KeysUnavailable as exc:
        raise StatusListUnobtainable("the issuer's keys are unavailable") from exc
    except InvalidToken as exc:  # unknown kid: not signed by a key of the token's issuer
        raise StatusListInvalid("not signed by a key of the token's issuer") from exc
    try:
        SIGNATURE_VERIFIERS[alg](key.public_key, signature, f"{header_b64}.{payload_b64}".encode())
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise StatusListInvalid("bad signature") from exc
    if claims.get("sub") != uri:
        raise StatusListInvalid("sub is not the token's status list uri")
    if "iss" in claims and claims["iss"] != issuer:
        raise StatusListInvalid("iss is not the token's issuer")
    iat = _numeric(claims, "iat")
    if iat is None:
        raise StatusListInvalid("iat is missing")
    exp = _numeric(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise StatusListInvalid("the status list token has expired")
    ttl = _numeric(claims, "ttl")
    if ttl is not None and ttl <= 0:
        raise StatusListInvalid("ttl is not a positive number")
    return VerifiedList(StatusList.from_json(claims.get("status_list"), max_inflated=max_inflated), exp, ttl, iat)
