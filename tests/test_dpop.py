"""RFC 9449 section 4.3, check by check: each check has its own failing case (and the proof that passes)."""

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, JWKRegistry

from drf_m2m_auth.dpop import (
    DPoPVerifier,
    NonceSource,
    access_token_hash,
)
from drf_m2m_auth.dpop_htu import normalize_htu
from drf_m2m_auth.dpop_key import DPoPKey
from drf_m2m_auth.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from drf_m2m_auth.jose import thumbprint as jwk_thumbprint
from drf_m2m_auth.testing import FakeClock, encode_jws, generate_private_key, public_jwk

URL = "https://api.example.com/orders/"
TOKEN = "header.payload.signature-of-the-access-token"
NOW = 1_700_000_000


@pytest.fixture
def key():
    return generate_private_key("ES256")


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
def verifier(clock):
    return DPoPVerifier(algorithms=["ES256", "PS256", "EdDSA"], max_age=60, clock_skew=5, clock=clock)


def jkt_of(private_key):
    return jwk_thumbprint(public_jwk(private_key, None, use=None))


def proof(private_key, *, header=None, claims=None, omit=(), alg="ES256", sign_with=None, token=TOKEN):
    hdr = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(private_key, None, use=None)}
    hdr.update(header or {})
    body = {"jti": f"jti-{time.perf_counter_ns()}", "htm": "GET", "htu": URL, "iat": NOW}
    if token is not None:
        body["ath"] = access_token_hash(token)
    body.update(claims or {})
    for name in omit:
        (hdr if name in ("typ", "alg", "jwk") else body).pop(name, None)
    return encode_jws(hdr, body, sign_with or private_key, alg)


def check(verifier, value, *, method="GET", url=URL, token=TOKEN, jkt=None, key=None):
    if jkt is None and key is not None:
        jkt = jkt_of(key)
    return verifier.verify(value, method=method, url=url, access_token=token, jkt=jkt)


def rejected(verifier, value, **kwargs):
    with pytest.raises(InvalidToken) as info:
        check(verifier, value, **kwargs)
    return info.value


def test_a_valid_proof_passes(verifier, key):
    result = check(verifier, proof(key), key=key)
    assert result.jkt == jkt_of(key)


def test_thumbprint_is_rfc_7638(key):
    jwk = public_jwk(key, None, use=None)
    assert jwk_thumbprint(jwk) == ECKey.import_key(jwk).thumbprint()
    # RFC 7638 section 3.1's worked example
    rsa = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhD"
        "R1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
        "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
        "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert jwk_thumbprint(rsa) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# --- RFC 9449 4.3, in its order ------------------------------------------------------------------


def test_check_01_more_than_one_dpop_header(verifier, key):
    # Servers join repeated header fields with "," (RFC 9110 5.3); a compact JWS never holds one.
    error = rejected(verifier, proof(key) + "," + proof(key), key=key)
    assert (error.error, error.reason) == ("invalid_dpop_proof", "dpop_multiple_headers")


def test_check_01b_no_dpop_header_at_all(verifier, key):
    assert rejected(verifier, None, key=key).reason == "dpop_missing"


@pytest.mark.parametrize(
    "value",
    ["not-a-jwt", "a.b", "a.b.c.d", "!!!.e30.e30", "e30.W10.AA", "eyJhIjoxLCJhIjoyfQ.e30.AA", "x" * 9000, "é.é.é"],
)
def test_check_02_not_a_single_well_formed_jwt(verifier, key, value):
    error = rejected(verifier, value, key=key)
    assert (error.error, error.reason) == ("invalid_dpop_proof", "dpop_malformed")


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat", "ath"])
def test_check_03_a_required_claim_is_missing(verifier, key, claim):
    error = rejected(verifier, proof(key, omit=(claim,)), key=key)
    assert (error.error, error.reason, error.claim) == ("invalid_dpop_proof", "dpop_missing_claim", claim)


@pytest.mark.parametrize(
    "claims", [{"jti": ""}, {"jti": "x" * 300}, {"htm": 1}, {"iat": "now"}, {"iat": True}, {"ath": 5}]
)
def test_check_03_a_required_claim_has_the_wrong_type(verifier, key, claims):
    assert rejected(verifier, proof(key, claims=claims), key=key).reason == "dpop_bad_claim"


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", None])
def test_check_04_typ_is_not_dpop_jwt(verifier, key, typ):
    value = proof(key, omit=("typ",)) if typ is None else proof(key, header={"typ": typ})
    error = rejected(verifier, value, key=key)
    assert (error.reason, error.claim) == ("dpop_bad_typ", "typ")


def test_check_04_typ_compares_case_insensitively_as_a_media_type(verifier, key):
    assert check(verifier, proof(key, header={"typ": "application/DPoP+JWT"}), key=key)


def test_check_05_alg_none_is_refused(verifier, key):
    hdr = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(key, None, use=None)}
    value = encode_jws(
        hdr, {"jti": "j", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}, signature=b""
    )
    assert rejected(verifier, value, key=key).reason == "dpop_alg_not_allowed"


def test_check_05_symmetric_alg_is_refused(verifier, key):
    import hashlib
    import hmac

    from drf_m2m_auth.testing import b64url

    hdr = b64url('{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}')
    body = b64url(f'{{"jti":"j","htm":"GET","htu":"{URL}","iat":{NOW}}}')
    mac = hmac.new(b"secret", f"{hdr}.{body}".encode(), hashlib.sha256).digest()
    assert rejected(verifier, f"{hdr}.{body}.{b64url(mac)}", token=None).reason == "dpop_alg_not_allowed"


def test_check_05_asymmetric_alg_outside_local_policy_is_refused(verifier):
    es384 = generate_private_key("ES384")  # registered and asymmetric, but not in this verifier's list
    assert rejected(verifier, proof(es384, alg="ES384"), key=es384).reason == "dpop_alg_not_allowed"


def test_check_05_alg_must_suit_the_jwk(verifier, key):
    rsa = generate_private_key("PS256")
    value = proof(key, alg="PS256", sign_with=rsa)  # header says PS256, jwk is an EC key
    assert rejected(verifier, value, key=key).reason == "dpop_bad_jwk"


def test_check_06_signature_does_not_verify_with_the_jwk(verifier, key):
    other = generate_private_key("ES256")
    assert rejected(verifier, proof(key, sign_with=other), key=key).reason == "dpop_bad_signature"


def test_check_06_tampered_payload(verifier, key):
    header, _, signature = proof(key).split(".")
    other_payload = proof(key, claims={"htm": "DELETE"}).split(".")[1]
    assert rejected(verifier, f"{header}.{other_payload}.{signature}", key=key).reason == "dpop_bad_signature"


def test_check_07_jwk_holds_a_private_key(verifier, key):
    from joserfc.jwk import ECKey

    private_jwk = ECKey.import_key(key).as_dict(private=True)
    assert "d" in private_jwk
    error = rejected(verifier, proof(key, header={"jwk": private_jwk}), key=key)
    assert (error.reason, error.claim) == ("dpop_private_jwk", "jwk")


def test_check_07_jwk_missing_or_not_a_key(verifier, key):
    assert rejected(verifier, proof(key, omit=("jwk",)), key=key).reason == "dpop_missing_jwk"
    bad = {**public_jwk(key, None, use=None), "x": "AAAA"}
    assert rejected(verifier, proof(key, header={"jwk": bad}), key=key).reason == "dpop_bad_jwk"


def test_check_08_htm_is_another_method(verifier, key):
    error = rejected(verifier, proof(key, claims={"htm": "POST"}), key=key)
    assert (error.reason, error.claim) == ("dpop_htm_mismatch", "htm")
    assert rejected(verifier, proof(key, claims={"htm": "get"}), key=key).reason == "dpop_htm_mismatch"


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/other/",
        "https://evil.example.com/orders/",
        "http://api.example.com/orders/",
        "https://api.example.com:8443/orders/",
        "https://api.example.com/orders",
        "/orders/",
        "https://user@api.example.com/orders/",
    ],
)
def test_check_09_htu_is_another_url(verifier, key, htu):
    error = rejected(verifier, proof(key, claims={"htu": htu}), key=key)
    assert (error.reason, error.claim) == ("dpop_htu_mismatch", "htu")


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/orders/?page=2",
        "https://api.example.com/orders/#top",
        "https://api.example.com/orders/?a=b#c",
        "HTTPS://API.Example.COM:443/orders/",
        "https://api.example.com/x/../orders/",
        "https://api.example.com/%6Frders/",
    ],
)
def test_check_09_htu_ignores_query_and_fragment_and_is_normalised(verifier, key, htu):
    assert check(verifier, proof(key, claims={"htu": htu}), key=key)


def test_check_09_request_url_with_query_matches_htu_without(verifier, key):
    assert check(verifier, proof(key), url=URL + "?page=2&sort=name", key=key)


def test_normalize_htu():
    assert normalize_htu("https://[::1]:443/a/./b/../c") == "https://[::1]/a/c"
    assert normalize_htu("http://h:8080") == "http://h:8080/"
    assert normalize_htu("https://h/a%2fb") == "https://h/a%2Fb"
    assert normalize_htu("ftp://h/") is None and normalize_htu(5) is None and normalize_htu("https://h:99999/") is None


def test_check_10_server_nonce_missing_or_wrong(key, clock):
    nonces = NonceSource(b"secret", lifetime=300, clock=clock)
    verifier = DPoPVerifier(algorithms=["ES256"], clock=clock, nonces=nonces)
    with pytest.raises(UseDPoPNonce) as info:
        check(verifier, proof(key), key=key)
    assert info.value.error == "use_dpop_nonce" and nonces.age(info.value.nonce) == 0
    for wrong in ("made-up", NonceSource(b"another secret", clock=clock).issue()):
        with pytest.raises(UseDPoPNonce):
            check(verifier, proof(key, claims={"nonce": wrong}), key=key)
    assert check(verifier, proof(key, claims={"nonce": info.value.nonce}), key=key).nonce_age == 0


def test_check_10_and_11_a_nonce_too_old_is_refused_and_bounds_creation_time(key, clock):
    nonces = NonceSource(b"secret", lifetime=300, clock=clock)
    verifier = DPoPVerifier(algorithms=["ES256"], clock=clock, nonces=nonces)
    nonce = nonces.issue()
    # With nonces, the server's timestamp bounds the proof: a client clock 1 h off still works.
    assert check(verifier, proof(key, claims={"nonce": nonce, "iat": NOW + 3600}), key=key)
    clock.now += 301
    with pytest.raises(UseDPoPNonce):
        check(verifier, proof(key, claims={"nonce": nonce}), key=key)


@pytest.mark.parametrize("offset,ok", [(-64, True), (-66, False), (-600, False), (4, True), (6, False), (3600, False)])
def test_check_11_iat_window_and_clock_skew(verifier, key, offset, ok):
    # max_age 60 + clock_skew 5: iat may be 65 s old, or 5 s in the future (a client clock ahead).
    value = proof(key, claims={"iat": NOW + offset})
    if ok:
        assert check(verifier, value, key=key)
    else:
        error = rejected(verifier, value, key=key)
        assert error.claim == "iat" and error.reason == ("dpop_iat_in_future" if offset > 0 else "dpop_iat_too_old")


def test_check_12_ath_is_not_the_hash_of_this_access_token(verifier, key):
    error = rejected(verifier, proof(key, token="another.access.token"), key=key)
    assert (error.error, error.reason, error.claim) == ("invalid_dpop_proof", "dpop_ath_mismatch", "ath")


def test_check_12_non_ascii_ath_or_jkt_is_a_mismatch_not_a_crash(verifier, key):
    assert rejected(verifier, proof(key, claims={"ath": "é"}), key=key).reason == "dpop_ath_mismatch"
    assert rejected(verifier, proof(key), jkt="é").reason == "dpop_key_mismatch"


def test_check_12_proof_key_is_not_the_key_the_token_is_bound_to(verifier, key):
    thief = generate_private_key("ES256")
    error = rejected(verifier, proof(thief), key=key)  # the token's cnf.jkt is key's
    assert (error.error, error.reason, error.claim) == ("invalid_token", "dpop_key_mismatch", "cnf")


def test_replayed_proof_is_refused(verifier, key):
    value = proof(key)
    assert check(verifier, value, key=key)
    error = rejected(verifier, value, key=key)
    assert (error.error, error.reason, error.claim) == ("invalid_dpop_proof", "dpop_replayed", "jti")


def test_a_failing_proof_does_not_burn_its_jti(verifier, key):
    value = proof(key, claims={"jti": "once"})
    rejected(verifier, value, method="POST", key=key)
    assert check(verifier, value, key=key)


def test_errors_are_invalid_dpop_proof_401(verifier, key):
    error = rejected(verifier, proof(key, claims={"htm": "PUT"}), key=key)
    assert isinstance(error, InvalidDPoPProof) and error.status_code == 401 and URL not in error.description


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "EdDSA"])
def test_a_client_key_publishes_the_jwk_joserfc_makes(alg):
    dpop_key = DPoPKey(generate_private_key(alg))
    assert dpop_key.alg == alg
    kty = dpop_key.jwk["kty"]
    theirs = JWKRegistry.import_key(dpop_key._private_key.public_key(), kty).as_dict(private=False)
    assert dpop_key.jwk == {name: theirs[name] for name in dpop_key.jwk}
    expected = {"EC": {"kty", "crv", "x", "y"}, "RSA": {"kty", "n", "e"}, "OKP": {"kty", "crv", "x"}}[kty]
    assert set(dpop_key.jwk) == expected  # public members only


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_client_keys_make_proofs_the_verifier_accepts(verifier, alg):
    private = None if alg == "ES256" else generate_private_key(alg)
    dpop_key = DPoPKey(private)
    assert dpop_key.alg == alg
    value = dpop_key.proof("GET", URL + "?q=1#f", access_token=TOKEN, iat=NOW)
    assert check(verifier, value, jkt=dpop_key.thumbprint).jkt == dpop_key.thumbprint
    a, b = (dpop_key.proof("GET", URL) for _ in range(2))
    assert a != b  # a fresh jti every time


def test_a_dpop_key_must_be_a_supported_private_key():
    private = generate_private_key("ES256")
    with pytest.raises(TypeError, match="private key"):
        DPoPKey(private.public_key())
    with pytest.raises(TypeError, match="Ed448"):
        DPoPKey(generate_private_key("Ed448"))
    with pytest.raises(TypeError, match="unsupported DPoP key type"):
        DPoPKey(object.__new__(type("Odd", (), {"sign": None, "public_key": lambda self: self})))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    claims=st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), JSON),
    header=st.dictionaries(st.sampled_from(["typ", "crit", "kid", "x5c"]), JSON),
)
def test_signed_proofs_with_arbitrary_claims_never_crash(key, claims, header):
    # Anyone can sign a proof with their own key: every value past the signature is hostile.
    value = proof(key, header=header, claims=claims)
    for nonces in (None, NonceSource(b"s")):
        try:
            check(DPoPVerifier(algorithms=["ES256"], nonces=nonces, clock=FakeClock(NOW)), value, key=key)
        except InvalidToken:
            pass


# Every member a proof can carry, drawn from every JSON type (a list as jwk.crv
# was a TypeError, i.e. a 500, before the signature was even checked).
HEADER_MEMBERS = ["typ", "alg", "jwk", "crit", "kid", "x5c", "nonce"]
JWK_MEMBERS = ["kty", "crv", "x", "y", "n", "e", "d", "alg", "use", "kid", "key_ops"]
CLAIM_MEMBERS = ["jti", "htm", "htu", "iat", "ath", "nonce", "exp", "nbf"]
ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["P-256", "EC", "ES256", "dpop+jwt", "GET", URL, "RSA", "OKP", "Ed25519"]),
    st.lists(st.sampled_from(["P-256", "EC", 1, None]), max_size=3),
    st.dictionaries(st.sampled_from(["crv", "kty", "a"]), st.sampled_from(["P-256", 1, None]), max_size=2),
    JSON,
)


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(st.sampled_from(HEADER_MEMBERS), ANY_JSON, max_size=4),
    jwk=st.dictionaries(st.sampled_from(JWK_MEMBERS), ANY_JSON, max_size=4),
    claims=st.dictionaries(st.sampled_from(CLAIM_MEMBERS), ANY_JSON, max_size=4),
    signed_alg=st.sampled_from(["ES256", "PS256", "EdDSA"]),
)
def test_every_member_of_every_json_type_is_a_401_never_a_crash(key, header, jwk, claims, signed_alg):
    # The real key's members are overridden one by one, so checks past the first are reached too.
    real = public_jwk(key, None, use=None)
    hdr = {"alg": "ES256", **header, "jwk": {**real, **jwk}}
    if "jwk" in header and not isinstance(header["jwk"], dict):
        hdr["jwk"] = header["jwk"]
    value = proof(key, header=hdr, claims=claims)
    for nonces in (None, NonceSource(b"s")):
        verifier = DPoPVerifier(algorithms=["ES256", "PS256", "EdDSA", signed_alg], nonces=nonces, clock=FakeClock(NOW))
        for jkt in (jkt_of(key), None, 7, ["x"]):
            try:
                verifier.verify(value, method="GET", url=URL, access_token=TOKEN, jkt=jkt)
            except InvalidToken as exc:
                assert exc.status_code == 401


@pytest.mark.parametrize(
    "member, value",
    [("crv", ["P-256"]), ("crv", {"a": 1}), ("kty", ["EC"]), ("kty", {"EC": 1}), ("crv", None), ("x", 5)],
)
def test_a_jwk_member_of_an_odd_json_type_is_invalid_dpop_proof(verifier, key, member, value):
    bad = {**public_jwk(key, None, use=None), member: value}
    error = rejected(verifier, proof(key, header={"jwk": bad}), key=key)
    assert (error.error, error.reason) == ("invalid_dpop_proof", "dpop_bad_jwk")


@pytest.mark.parametrize("jkt", [7, ["x"], {"jkt": 1}])
def test_a_token_binding_of_an_odd_type_is_a_mismatch_not_a_crash(verifier, key, jkt):
    assert rejected(verifier, proof(key), jkt=jkt).reason == "dpop_key_mismatch"
