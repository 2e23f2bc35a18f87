# ruff: noqa: E501 -- the published vectors are kept in long, greppable strings
"""jose.py against joserfc (and PyJWT when importable), and against published test vectors.

Every token here is signed by joserfc, then possibly mutated; our strict parser plus
``jose.verify_signature`` must accept exactly what joserfc accepts. The vectors are RFC 7515
appendix A.2/A.3 and RFC 7520 section 4.1-4.3 (from the IETF JOSE cookbook), verbatim.
"""

import base64
import warnings

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from drf_m2m_auth import jose

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PRIVATE = {
    **{f"{f}{b}": _RSA for f in ("RS", "PS") for b in ("256", "384", "512")},
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    "EdDSA/Ed448": ed448.Ed448PrivateKey.generate(),
    "Ed25519": ed25519.Ed25519PrivateKey.generate(),
}
_N = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
    "ES512": int("1" + "F" * 64 + "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
}
MUTATIONS = ["none", "flip_signature", "flip_payload", "truncate", "pad", "std_alphabet", "der", "high_s", "pss_salt"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _joserfc_key(private):
    for cls in (RSAKey, ECKey, OKPKey):
        try:
            return cls.import_key(private)
        except Exception:  # noqa: BLE001, S112 -- not this key type: try the next
            continue
    raise AssertionError("joserfc cannot import the key")


def _alg(name: str) -> str:
    return name.split("/")[0]


def ours(token: str, alg: str, public_key) -> bool:
    try:
        head, payload, signature = token.split(".")
        header = jose.json_object(jose.b64url_decode(head))
        jose.b64url_decode(payload)
        sig = jose.b64url_decode(signature)
    except (ValueError, TypeError, UnicodeError):
        return False
    return header.get("alg") == alg and jose.verify_signature(alg, public_key, f"{head}.{payload}".encode(), sig)


def joserfc_accepts(token: str, alg: str, key) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is deprecated (RFC 9864)
        try:
            jws.deserialize_compact(token, key, algorithms=[alg])
        except Exception:  # noqa: BLE001 -- any refusal
            return False
    return True


def _mutate(token: str, name: str, mutation: str, position: int, private) -> str | None:
    """The mutated token, or None when the mutation does not apply to this algorithm."""
    alg = _alg(name)
    head, payload, signature = token.split(".")
    sig = jose.b64url_decode(signature)
    signing_input = f"{head}.{payload}".encode()
    if mutation == "none":
        return token
    if mutation == "flip_signature":
        i = position % len(sig)
        return f"{head}.{payload}.{_b64(sig[:i] + bytes([sig[i] ^ (1 << position % 8)]) + sig[i + 1 :])}"
    if mutation == "flip_payload":
        raw = bytearray(jose.b64url_decode(payload))
        raw[position % len(raw)] ^= 1 << position % 8
        return f"{head}.{_b64(bytes(raw))}.{signature}"
    if mutation == "truncate":
        return f"{head}.{payload}.{_b64(sig[: -1 - position % 3])}"
    if mutation == "pad":
        return f"{token}{'=' * (1 + position % 2)}"
    if mutation == "std_alphabet":
        mutated = token.replace("-", "+").replace("_", "/")
        return mutated if mutated != token else None
    if mutation in ("der", "high_s"):
        if not alg.startswith("ES"):
            return None
        size = len(sig) // 2
        r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
        if mutation == "der":
            return f"{head}.{payload}.{_b64(encode_dss_signature(r, s))}"
        high = _N[alg] - s
        return f"{head}.{payload}.{_b64(r.to_bytes(size, 'big') + high.to_bytes(size, 'big'))}"
    if mutation == "pss_salt":
        if not alg.startswith("PS"):
            return None
        digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        salt = (0, digest.digest_size // 2, padding.PSS.MAX_LENGTH)[position % 3]
        forged = private.sign(signing_input, padding.PSS(mgf=padding.MGF1(digest), salt_length=salt), digest)
        return f"{head}.{payload}.{_b64(forged)}"
    raise AssertionError(mutation)


CLAIMS = st.dictionaries(
    st.sampled_from(["iss", "sub", "aud", "exp", "iat", "jti", "scope"]) | st.text(max_size=6),
    st.text(max_size=12) | st.integers(min_value=0, max_value=2**40),
    max_size=5,
)


@hsettings(max_examples=250, deadline=None)
@given(
    st.sampled_from(sorted(_PRIVATE)), CLAIMS, st.sampled_from(MUTATIONS), st.integers(min_value=0, max_value=10_000)
)
def test_ours_agrees_with_joserfc(name, claims, mutation, position):
    alg, private = _alg(name), _PRIVATE[name]
    key = _joserfc_key(private)
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jws.serialize_compact({"alg": alg, "typ": "at+jwt"}, json.dumps(claims).encode(), key, algorithms=[alg])
    mutated = _mutate(token, name, mutation, position, private)
    if mutated is None:
        return
    expected = joserfc_accepts(mutated, alg, key)
    assert ours(mutated, alg, private.public_key()) is expected, (name, mutation)
    if mutation == "none":
        assert expected  # the untouched token is valid for both
    if mutation in ("flip_signature", "flip_payload", "truncate", "der", "pss_salt"):
        assert not expected  # and each of these breaks it for both
    if mutation == "high_s":
        assert expected  # RFC 7518 does not forbid the high-S twin (and it proves _N is the curve order)
    if _PYJWT is not None and alg in _PYJWT_ALGS and name != "EdDSA/Ed448" and mutation not in PYJWT_LENIENT:
        assert pyjwt_accepts(mutated, alg, private.public_key()) is expected, ("PyJWT", name, mutation)


# --- PyJWT (the ``bench`` extra) --------------------------------------------------------------------

try:
    import jwt as _PYJWT

    _PYJWT_ALGS = frozenset(_PYJWT.algorithms.get_default_algorithms())  # no "Ed25519" name, no Ed448
except ImportError:  # pragma: no cover - the comparison is skipped, the rest still runs
    _PYJWT, _PYJWT_ALGS = None, frozenset()

# PyJWT's known leniency (where it accepts what joserfc and we refuse): its base64url decoder
# tolerates trailing "=" padding on a segment. That mutation is not compared with it (and the
# test below proves the leniency is still real, so the list stays honest).
PYJWT_LENIENT = frozenset({"pad"})


def pyjwt_accepts(token: str, alg: str, public_key) -> bool:
    try:
        _PYJWT.api_jws.PyJWS().decode_complete(token, public_key, algorithms=[alg])
    except Exception:  # noqa: BLE001 -- any refusal
        return False
    return True


@pytest.mark.skipif(_PYJWT is None, reason="PyJWT (the bench extra) is not installed")
@pytest.mark.parametrize("mutation", sorted(PYJWT_LENIENT))
def test_pyjwt_leniencies_are_what_we_list(mutation):
    """The listed leniencies are real (so the list stays honest): PyJWT accepts, we and joserfc refuse."""
    name, private = "RS256", _PRIVATE["RS256"]
    token = _PYJWT.encode({"sub": "a"}, private, algorithm="RS256")
    while "-" not in token and "_" not in token:  # std_alphabet needs a character to change
        token = _PYJWT.encode({"sub": token[-8:]}, private, algorithm="RS256")
    mutated = _mutate(token, name, mutation, 1, private)
    assert pyjwt_accepts(mutated, "RS256", private.public_key())
    assert not ours(mutated, "RS256", private.public_key())
    assert not joserfc_accepts(mutated, "RS256", _joserfc_key(private))


# --- published vectors ------------------------------------------------------------------------------

_A2_N = (
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS"
    "-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2"
    "CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9"
    "gb54h4FRWyuXpoQ"
)
_A_PAYLOAD = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
_BILBO_RSA_N = (
    "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wq"
    "VwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJ"
    "lsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQ"
    "kqgc5gHdrNP5zw"
)
_FRODO = (
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5k"
    "IGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
)
VECTORS = {
    # RFC 7515 A.2: RS256
    "rfc7515-A.2": (
        {"kty": "RSA", "n": _A2_N, "e": "AQAB"},
        "RS256",
        "eyJhbGciOiJSUzI1NiJ9."
        + _A_PAYLOAD
        + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc"
        "_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07"
        "Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98"
        "rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw",
    ),
    # RFC 7515 A.3: ES256 (its S is the high one: neither JOSE nor joserfc forbids that)
    "rfc7515-A.3": (
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        },
        "ES256",
        "eyJhbGciOiJFUzI1NiJ9."
        + _A_PAYLOAD
        + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP"
        "3-Kg6NU1Q",
    ),
    # RFC 7520 4.1: RS256
    "rfc7520-4.1": (
        {"kty": "RSA", "n": _BILBO_RSA_N, "e": "AQAB"},
        "RS256",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
        + _FRODO
        + ".MRjdkly7_-oTPTS3AXP41iQ"
        "IGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfW"
        "Ra-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjl"
        "uPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg",
    ),
    # RFC 7520 4.2: PS384
    "rfc7520-4.2": (
        {"kty": "RSA", "n": _BILBO_RSA_N, "e": "AQAB"},
        "PS384",
        "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
        + _FRODO
        + ".cu22eBqkYDKgIlTpzDXGvaF"
        "fz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD"
        "8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5aw"
        "DzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw",
    ),
    # RFC 7520 4.3: ES512
    "rfc7520-4.3": (
        {
            "kty": "EC",
            "crv": "P-521",
            "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
            "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1",
        },
        "ES512",
        "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
        + _FRODO
        + ".AE_R_YZCChjn4791jSQCrdP"
        "ZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2p"
        "uQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2",
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_published_vectors_verify_and_a_flipped_bit_does_not(name):
    jwk, alg, token = VECTORS[name]
    public = jose.jwk_to_public_key(jwk, alg)
    assert ours(token, alg, public)
    assert joserfc_accepts(token, alg, _joserfc_key(public))
    head, payload, signature = token.split(".")
    sig = bytearray(jose.b64url_decode(signature))
    sig[len(sig) // 2] ^= 0x01
    assert not ours(f"{head}.{payload}.{_b64(bytes(sig))}", alg, public)
    assert jose.thumbprint(jwk) == _joserfc_key(public).thumbprint()  # RFC 7638, both ways
