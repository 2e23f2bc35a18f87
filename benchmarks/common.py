"""Keys, token minting and small helpers shared by the coordinator and the workers.

Tokens are signed here with ``cryptography`` directly (no JOSE library), so that no system under
test mints its own input.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import subprocess
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALGS = ("RS256", "ES256")
KID = {"RS256": "rsa-2024", "ES256": "ec-2024"}
AUDIENCE = "https://orders.internal.example"
SCOPE = "read:data write:data"
CLIENT_ID = "svc-a-1a2b3c4d5e6f7a8b9c0d"
EXPIRING_LIFETIME = 45  # seconds: outlives worker set-up; run.py waits for it before the post-checks


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int, length: int | None = None) -> str:
    length = length or (value.bit_length() + 7) // 8
    return b64e(value.to_bytes(length, "big"))


# -- keys ------------------------------------------------------------------------------------


def generate_keys() -> dict[str, bytes]:
    """A fresh RSA-2048 and P-256 pair per algorithm, plus keys that are never published."""

    def pem(key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    return {
        "RS256": pem(rsa.generate_private_key(65537, 2048)),
        "ES256": pem(ec.generate_private_key(ec.SECP256R1())),
        "RS256-old": pem(rsa.generate_private_key(65537, 2048)),  # a second published key
        "RS256-unpublished": pem(rsa.generate_private_key(65537, 2048)),
        "ES256-unpublished": pem(ec.generate_private_key(ec.SECP256R1())),
    }


def load_private(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def public_jwk(private_key, kid: str, alg: str) -> dict:
    pub = private_key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": alg, "kid": kid, "n": _int_b64(nums.n), "e": _int_b64(nums.e)}
    nums = pub.public_numbers()
    return {
        "kty": "EC",
        "use": "sig",
        "alg": alg,
        "kid": kid,
        "crv": "P-256",
        "x": _int_b64(nums.x, 32),
        "y": _int_b64(nums.y, 32),
    }


def jwks_document(keys_pem: dict[str, bytes]) -> dict:
    """The issuer's published JWKS: the current RSA and EC keys and one older RSA key."""
    return {
        "keys": [
            public_jwk(load_private(keys_pem["RS256-old"]), "rsa-2023", "RS256"),
            public_jwk(load_private(keys_pem["RS256"]), KID["RS256"], "RS256"),
            public_jwk(load_private(keys_pem["ES256"]), KID["ES256"], "ES256"),
        ]
    }


# -- tokens ----------------------------------------------------------------------------------


def sign(private_key, alg: str, signing_input: bytes) -> bytes:
    if alg == "RS256":
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS form: R || S (RFC 7518 3.4)
    raise ValueError(alg)


def mint(private_key, header: dict, claims: dict) -> str:
    signing_input = (
        b64e(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64e(json.dumps(claims, separators=(",", ":")).encode())
    )
    sig = sign(private_key, header["alg"], signing_input.encode("ascii"))
    return signing_input + "." + b64e(sig)


def claims_for(issuer: str, *, now: int | None = None, lifetime: int = 4 * 3600, **extra) -> dict:
    """An Auth0-shaped client_credentials access token."""
    now = int(time.time()) if now is None else now
    claims = {
        "iss": issuer,
        "sub": CLIENT_ID + "@clients",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
        "azp": CLIENT_ID,
        "scope": SCOPE,
        "gty": "client-credentials",
        "jti": uuid.uuid4().hex,
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def mint_batch(args: tuple) -> list[str]:
    """Pool target: mint ``count`` distinct valid tokens (distinct jti) for one algorithm."""
    pem, alg, kid, issuer, count = args
    key = load_private(pem)
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    now = int(time.time())
    return [mint(key, header, claims_for(issuer, now=now)) for _ in range(count)]


def one_round_tokens(keys_pem: dict[str, bytes], alg: str, issuer: str, n_distinct: int) -> dict:
    """The worker's token set for one alg and one round (what run.py lays out per round), for the
    single-run tools (breakdown.py, profile_ours.py)."""
    toks = mint_batch((keys_pem[alg], alg, KID[alg], issuer, 45 + n_distinct))
    return {
        "A": toks[0],
        "Cs": toks[1],
        "D": toks[2],
        "warm": toks[3:33],
        "warm_view": toks[33:43],
        "B": [toks[45:]],
        "Cd": [toks[45:]],
        "special": special_tokens(keys_pem, alg, issuer),
        **status_tokens(keys_pem, alg, issuer),
    }


def special_tokens(keys_pem: dict[str, bytes], alg: str, issuer: str) -> dict:
    """Tokens that every system must reject (checked before timing, so no row skips a check)."""
    key = load_private(keys_pem[alg])
    other = load_private(keys_pem[alg + "-unpublished"])
    hdr = {"alg": alg, "typ": "JWT", "kid": KID[alg]}
    now = int(time.time())
    good = mint(key, hdr, claims_for(issuer, now=now))
    h, p, s = good.split(".")
    tampered_claims = claims_for(issuer, now=now, scope="read:data write:data admin")
    return {
        "bad_signature": h + "." + b64e(json.dumps(tampered_claims).encode()) + "." + s,
        "wrong_key_same_kid": mint(other, hdr, claims_for(issuer, now=now)),
        "expired": mint(key, hdr, claims_for(issuer, now=now - 7200, lifetime=3600)),
        "wrong_audience": mint(key, hdr, claims_for(issuer, now=now, aud="https://other.example")),
        "wrong_issuer": mint(key, hdr, claims_for(issuer, now=now, iss="https://evil.example/")),
        "alg_none": b64e(json.dumps({"alg": "none", "typ": "JWT", "kid": KID[alg]}).encode()) + "." + p + ".",
        # exp soon: accepted (and cached) at set-up, must be refused after the timed rounds
        "expiring": mint(key, hdr, claims_for(issuer, now=now, lifetime=EXPIRING_LIFETIME)),
    }


STATUS_LIST_PATH = "lists/statuslists/1"  # served by jwks_server.py under the issuer's own host
STATUS_VALID_IDX, STATUS_REVOKED_IDX = 5, 7


def status_tokens(keys_pem: dict[str, bytes], alg: str, issuer: str) -> dict:
    """Case AS: a token carrying a status claim (VALID in the list), and one revoked in it."""
    key = load_private(keys_pem[alg])
    hdr = {"alg": alg, "typ": "JWT", "kid": KID[alg]}
    now = int(time.time())

    def with_idx(idx: int) -> str:
        status = {"status_list": {"idx": idx, "uri": issuer + STATUS_LIST_PATH}}
        return mint(key, hdr, claims_for(issuer, now=now, status=status))

    return {"AS": with_idx(STATUS_VALID_IDX), "AS_revoked": with_idx(STATUS_REVOKED_IDX)}


def status_list_token(keys_pem: dict[str, bytes], issuer: str) -> str:
    """The issuer's Status List Token (draft-ietf-oauth-status-list-20): 1 bit per token, one revoked."""
    import zlib

    bits = bytearray(128)  # 1024 tokens
    bits[STATUS_REVOKED_IDX // 8] |= 1 << (STATUS_REVOKED_IDX % 8)
    now = int(time.time())
    claims = {
        "sub": issuer + STATUS_LIST_PATH,
        "iss": issuer,
        "iat": now,
        "exp": now + 4 * 3600,
        "ttl": 3600,
        "status_list": {"bits": 1, "lst": b64e(zlib.compress(bytes(bits), 9))},
    }
    hdr = {"alg": "RS256", "typ": "statuslist+jwt", "kid": KID["RS256"]}
    return mint(load_private(keys_pem["RS256"]), hdr, claims)


def unknown_kid_tokens(keys_pem: dict[str, bytes], issuer: str, count: int) -> list[str]:
    """RS256 tokens signed by an unpublished key, each with a kid never seen (a kid flood)."""
    key = load_private(keys_pem["RS256-unpublished"])
    now = int(time.time())
    return [
        mint(key, {"alg": "RS256", "typ": "JWT", "kid": "flood-" + uuid.uuid4().hex[:16]}, claims_for(issuer, now=now))
        for _ in range(count)
    ]


# -- the machine -----------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def package_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in (
        "Django",
        "djangorestframework",
        "cryptography",
        "joserfc",
        "Authlib",
        "PyJWT",
        "djangorestframework-simplejwt",
        "requests",
        "drf-m2m-auth",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(path: str) -> str | None:
    """HEAD's short hash, with "+dirty" when drf_m2m_auth/ has uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--", "drf_m2m_auth"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("+dirty" if dirty else "")) or None
