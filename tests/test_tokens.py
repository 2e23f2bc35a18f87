"""tokens.py: every header and claim rule, RFC 8725 section 2 attacks, the verified-token cache.

No database, no Django settings: the verifier is built with explicit arguments and a fake fetch.
"""

import base64
import hashlib
import hmac
import json
import math
import time

import pytest
from cryptography.hazmat.primitives import serialization

from drf_m2m_auth.errors import InvalidToken, KeysUnavailable
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.testing import FakeClock, FakeIssuer, b64url, encode_jws, public_jwk
from drf_m2m_auth.tokens import TokenVerifier

AUD = "https://api.example"


@pytest.fixture(scope="module")
def rsa_issuer():
    return FakeIssuer(alg="RS256", kid="rsa-1")


def make_verifier(fake, *, algorithms=("RS256",), jwks=None, clock=None, leeway=0, **kwargs):
    calls = []

    def fetch(url):
        calls.append(url)
        return (jwks if jwks is not None else fake.jwks()), 300

    clock = clock or time.time
    source = JWKSource(
        fake.issuer, jwks_url="https://issuer.example/jwks", algorithms=algorithms, fetch=fetch, clock=clock
    )
    verifier = TokenVerifier(
        sources={fake.issuer: source}, audiences=[AUD], algorithms=algorithms, leeway=leeway, clock=clock, **kwargs
    )
    verifier.fetch_calls = calls
    return verifier


def reason_of(verifier, token):
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.error == "invalid_token"
    return info.value.reason, info.value.claim


# --- the happy path -----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_valid_token_each_algorithm(alg):
    fake = FakeIssuer(alg=alg)
    verifier = make_verifier(fake, algorithms=(alg,))
    token = verifier.verify(fake.token(sub="abc@clients", scopes=["read:data", "write:data"]))
    assert token.client_id == "abc"
    assert token.subject == "abc@clients"
    assert token.scopes == frozenset({"read:data", "write:data"})
    assert token.issuer == fake.issuer
    assert token.jti and token.expires_at.tzinfo is not None


def test_repr_never_shows_the_raw_token(rsa_issuer):
    raw = rsa_issuer.token()
    verifier = make_verifier(rsa_issuer)
    client, token = verifier.verify_principal(raw)
    for text in (repr(token), str(token), repr(client), str(client)):
        assert raw not in text and raw.split(".")[2] not in text


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt", "application/at+jwt", "AT+JWT"])
def test_accepted_typ(rsa_issuer, typ):
    header = {"typ": typ} if typ else {}
    token = rsa_issuer.token(header=header)
    if typ is None:
        hdr = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        hdr.pop("typ")
        token = encode_jws(hdr, rsa_issuer.claims(), rsa_issuer.private_key)
    make_verifier(rsa_issuer).verify(token)


@pytest.mark.parametrize("typ", ["logout+jwt", "secevent+jwt", "dpop+jwt", "JOSE", 7, ""])
def test_other_typ_rejected_rfc8725_3_11(rsa_issuer, typ):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(header={"typ": typ})) == ("bad_typ", "typ")


def test_require_at_jwt_option(rsa_issuer):
    verifier = make_verifier(rsa_issuer, require_at_jwt=True)
    verifier.verify(rsa_issuer.token())  # FakeIssuer writes at+jwt
    assert reason_of(verifier, rsa_issuer.token(header={"typ": "JWT"}))[0] == "bad_typ"


# --- RFC 8725 section 2 attacks, one test each --------------------------------------------------


def test_2_1_alg_none_rejected(rsa_issuer):
    token = encode_jws({"alg": "none", "kid": rsa_issuer.kid}, rsa_issuer.claims()) + ""
    assert reason_of(make_verifier(rsa_issuer), token) == ("alg_not_allowed", "alg")


def test_2_1_none_capitalised_rejected(rsa_issuer):
    token = encode_jws({"alg": "None", "kid": rsa_issuer.kid}, rsa_issuer.claims())
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "alg_not_allowed"


def test_2_1_signature_stripped(rsa_issuer):
    head, body, _ = rsa_issuer.token().split(".")
    assert reason_of(make_verifier(rsa_issuer), f"{head}.{body}.")[0] == "bad_signature"


def test_2_1_signature_from_another_key(rsa_issuer):
    other = FakeIssuer(kid=rsa_issuer.kid)
    other.issuer = rsa_issuer.issuer
    assert reason_of(make_verifier(rsa_issuer), other.token())[0] == "bad_signature"


def test_2_1_payload_tampered(rsa_issuer):
    head, _, sig = rsa_issuer.token(scopes=["read:data"]).split(".")
    forged = b64url(json.dumps(rsa_issuer.claims(scopes=["admin"])))
    assert reason_of(make_verifier(rsa_issuer), f"{head}.{forged}.{sig}")[0] == "bad_signature"


@pytest.mark.parametrize("secret_form", ["pem", "jwk", "der"])
def test_2_1_hs256_with_public_key_confusion(rsa_issuer, secret_form):
    """PyJWT CVE-2022-29217 / python-jose CVE-2024-33663: the public key used as an HMAC secret."""
    public = rsa_issuer.private_key.public_key()
    secret = {
        "pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "der": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk": json.dumps(public_jwk(rsa_issuer.private_key, rsa_issuer.kid)).encode(),
    }[secret_form]
    header = {"alg": "HS256", "kid": rsa_issuer.kid, "typ": "at+jwt"}
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(rsa_issuer.claims()))}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(sig)}"
    # Even a verifier misconfigured to list HS256 never verifies it: HS* has no verifier at all.
    for algorithms in (("RS256",), ("HS256", "RS256")):
        assert reason_of(make_verifier(rsa_issuer, algorithms=algorithms), token)[0] == "alg_not_allowed"


def test_2_1_hs256_with_oct_key_in_jwks_never_used(rsa_issuer):
    jwks = rsa_issuer.jwks()
    jwks["keys"].append({"kty": "oct", "kid": "sym", "k": b64url(b"secret"), "alg": "HS256"})
    header = {"alg": "HS256", "kid": "sym"}
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(rsa_issuer.claims()))}"
    token = f"{signing_input}.{b64url(hmac.new(b'secret', signing_input.encode(), hashlib.sha256).digest())}"
    verifier = make_verifier(rsa_issuer, algorithms=("RS256", "HS256"), jwks=jwks)
    assert reason_of(verifier, token)[0] == "alg_not_allowed"


def test_2_1_alg_kty_mismatch_rs256_header_on_ec_key():
    ec_issuer = FakeIssuer(alg="ES256", kid="ec-1")
    token = encode_jws({"alg": "RS256", "kid": "ec-1"}, ec_issuer.claims(), ec_issuer.private_key, "ES256")
    verifier = make_verifier(ec_issuer, algorithms=("RS256", "ES256"))
    assert reason_of(verifier, token)[0] == "unknown_kid"  # no RSA key has that kid


def test_2_3_jwe_five_segments_rejected(rsa_issuer):
    assert reason_of(make_verifier(rsa_issuer), "a.b.c.d.e") == ("malformed", None)


@pytest.mark.parametrize("bad", ["\ud800.e30.AA", "e30.\udfff.AA", "\u00e9yJ.e30.AA", "e30.e30.\u65e5"])
def test_non_ascii_and_lone_surrogates_are_malformed_not_an_exception(rsa_issuer, bad):
    # The cache key hashes the raw string: a lone surrogate cannot be UTF-8 encoded strictly.
    assert reason_of(make_verifier(rsa_issuer), bad) == ("malformed", None)


def test_2_5_ecdsa_psychic_signature_rejected():
    """CVE-2022-21449: r = s = 0 must never verify."""
    fake = FakeIssuer(alg="ES256")
    head, body, _ = fake.token().split(".")
    token = f"{head}.{body}.{b64url(bytes(64))}"
    assert reason_of(make_verifier(fake, algorithms=("ES256",)), token)[0] == "bad_signature"


def test_2_5_ec_key_on_wrong_curve_is_not_used():
    p384 = FakeIssuer(alg="ES384", kid="k")
    token = encode_jws({"alg": "ES256", "kid": "k"}, p384.claims(), p384.private_key, "ES384")
    verifier = make_verifier(p384, algorithms=("ES256", "ES384"))
    assert reason_of(verifier, token)[0] in ("unknown_kid", "bad_signature")


def test_2_5_ecdsa_der_signature_rejected():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    fake = FakeIssuer(alg="ES256")
    head, body, _ = fake.token().split(".")
    der = fake.private_key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert reason_of(make_verifier(fake, algorithms=("ES256",)), f"{head}.{body}.{b64url(der)}")[0] == "bad_signature"


def test_2_6_duplicate_header_members_rejected(rsa_issuer):
    head = b64url('{"alg":"RS256","kid":"' + rsa_issuer.kid + '","alg":"none"}')
    body = b64url(json.dumps(rsa_issuer.claims()))
    assert reason_of(make_verifier(rsa_issuer), f"{head}.{body}.AAAA")[0] == "malformed"


def test_2_6_duplicate_claims_rejected(rsa_issuer):
    claims = json.dumps(rsa_issuer.claims())[:-1] + ', "aud": "https://evil.example"}'
    token = encode_jws({"alg": "RS256", "kid": rsa_issuer.kid}, claims, rsa_issuer.private_key)
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "malformed"


@pytest.mark.parametrize("segment", ["eyJhbGciOiJSUzI1NiJ9=", "eyJhbGci*OiJSUzI1NiJ9", "ZXlK\n", "é"])
def test_2_6_non_base64url_header_rejected(rsa_issuer, segment):
    _, body, sig = rsa_issuer.token().split(".")
    assert reason_of(make_verifier(rsa_issuer), f"{segment}.{body}.{sig}")[0] == "malformed"


def test_2_6_non_utf8_payload_rejected(rsa_issuer):
    token = encode_jws({"alg": "RS256", "kid": rsa_issuer.kid}, b"\xff\xfe{}", rsa_issuer.private_key)
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "malformed"


def test_2_7_token_for_another_audience(rsa_issuer):
    token = rsa_issuer.token(aud="https://other-api.example")
    assert reason_of(make_verifier(rsa_issuer), token) == ("bad_audience", "aud")


def test_2_7_token_from_another_issuer(rsa_issuer):
    token = rsa_issuer.token(iss="https://evil.example/")
    assert reason_of(make_verifier(rsa_issuer), token) == ("bad_issuer", "iss")


def test_2_8_cross_jwt_id_token_shape_rejected(rsa_issuer):
    """An OIDC id_token (aud = a client id, no at+jwt typ) must not pass as an access token."""
    token = rsa_issuer.token(aud="client-id-of-spa", header={"typ": "JWT"}, nonce="n")
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "bad_audience"


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_2_9_jku_x5u_never_fetched(rsa_issuer, param):
    attacker = FakeIssuer(kid="attacker")
    attacker.issuer = rsa_issuer.issuer
    token = attacker.token(header={param: "https://evil.example/jwks.json"})
    verifier = make_verifier(rsa_issuer)
    assert reason_of(verifier, token)[0] == "unknown_kid"
    assert all("evil" not in url for url in verifier.fetch_calls)


def test_2_9_embedded_jwk_header_not_trusted(rsa_issuer):
    attacker = FakeIssuer(kid=rsa_issuer.kid)
    attacker.issuer = rsa_issuer.issuer
    token = attacker.token(header={"jwk": public_jwk(attacker.private_key, rsa_issuer.kid)})
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "bad_signature"


def test_2_9_x5c_header_not_trusted(rsa_issuer):
    attacker = FakeIssuer(kid="x")
    attacker.issuer = rsa_issuer.issuer
    token = attacker.token(kid=None, header={"x5c": ["MIIB"]})
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "bad_signature"


# --- header rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "b64", [1]])
def test_unknown_crit_rejected(rsa_issuer, crit):
    extra = {"crit": crit, "b64": False} if crit == ["b64"] else {"crit": crit}
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(header=extra)) == ("crit_unsupported", "crit")


def test_alg_not_in_allow_list(rsa_issuer):
    fake = FakeIssuer(alg="PS256")
    assert reason_of(make_verifier(fake, algorithms=("RS256",)), fake.token())[0] == "alg_not_allowed"


def test_kid_absent_with_exactly_one_key(rsa_issuer):
    make_verifier(rsa_issuer).verify(rsa_issuer.token(kid=None))


def test_kid_absent_with_several_keys_rejected():
    fake = FakeIssuer()
    fake.rotate()
    assert reason_of(make_verifier(fake), fake.token(kid=None)) == ("kid_required", "kid")


def test_kid_not_a_string(rsa_issuer):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(kid=5))[0] == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "..",
        "a.b",
        "abc",
        "a.b.c",
        "e30.e30.",
        "W10.e30.",
        "e30.W10.",
        "bnVsbA.e30.",
        "e30.bnVsbA.",
        "eyJhbGciOiJSUzI1NiJ9.e30.e30.e30",
    ],
)
def test_malformed_compact_forms(rsa_issuer, raw):
    reason, _ = reason_of(make_verifier(rsa_issuer), raw)
    assert reason in ("malformed", "alg_not_allowed", "bad_issuer")  # iss picks the rules before alg is judged


def test_size_cap_before_parsing(rsa_issuer):
    token = "A" * (1024 * 1024)
    assert reason_of(make_verifier(rsa_issuer), token) == ("too_large", None)


def test_deeply_nested_json_is_a_401_not_a_crash(rsa_issuer):
    verifier = make_verifier(rsa_issuer, max_token_bytes=10**6)
    body = b64url("[" * 100000 + "]" * 100000)
    assert reason_of(verifier, f"{b64url(json.dumps({'alg': 'RS256'}))}.{body}.AA")[0] == "malformed"


def test_nan_and_infinity_literals_rejected(rsa_issuer):
    claims = json.dumps(rsa_issuer.claims()).replace('"iat": ', '"iat": NaN, "x": ')
    token = encode_jws({"alg": "RS256", "kid": rsa_issuer.kid}, claims, rsa_issuer.private_key)
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "malformed"


# --- claims ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_required_claims(rsa_issuer, claim):
    expected = "bad_issuer" if claim == "iss" else "missing_claim"
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(omit=(claim,)))[0] == expected


def test_expired(rsa_issuer):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(expires_in=-1)) == ("expired", "exp")


def test_leeway_applies_to_exp(rsa_issuer):
    make_verifier(rsa_issuer, leeway=30).verify(rsa_issuer.token(expires_in=-10))


@pytest.mark.parametrize(
    "claim,value",
    [
        ("exp", "9999999999"),
        ("exp", 10**30),
        ("exp", True),
        ("exp", None),
        ("exp", [1]),
        ("iat", "now"),
        ("iat", -1),
        ("nbf", 1e300),
        ("exp", 1e19),
    ],
)
def test_numeric_dates_must_be_finite_numbers(rsa_issuer, claim, value):
    token = rsa_issuer.token(**{claim: value})
    assert reason_of(make_verifier(rsa_issuer), token) == ("bad_claim", claim)


def test_nbf_in_future(rsa_issuer):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(nbf=int(time.time()) + 120))[0] == "not_yet_valid"


def test_iat_in_future_beyond_leeway(rsa_issuer):
    token = rsa_issuer.token(iat=int(time.time()) + 120)
    assert reason_of(make_verifier(rsa_issuer, leeway=5), token) == ("iat_in_future", "iat")
    make_verifier(rsa_issuer, leeway=300).verify(token)


@pytest.mark.parametrize("aud", [AUD, [AUD], ["https://x", AUD]])
def test_audience_string_or_list(rsa_issuer, aud):
    make_verifier(rsa_issuer).verify(rsa_issuer.token(aud=aud))


@pytest.mark.parametrize("aud", [[], ["https://x"], 5, {"a": AUD}, [AUD, 5], AUD + "/", AUD.upper()])
def test_audience_mismatch(rsa_issuer, aud):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(aud=aud))[0] == "bad_audience"


@pytest.mark.parametrize("sub", ["", "  ", 5, None, ["a"]])
def test_sub_must_be_non_empty_string(rsa_issuer, sub):
    assert reason_of(make_verifier(rsa_issuer), rsa_issuer.token(sub=sub)) == ("bad_claim", "sub")


def test_issuer_is_an_exact_match(rsa_issuer):
    token = rsa_issuer.token(iss=rsa_issuer.issuer.rstrip("/"))
    assert reason_of(make_verifier(rsa_issuer), token)[0] == "bad_issuer"


@pytest.mark.parametrize(
    "claims,client_id",
    [
        ({"sub": "abc@clients"}, "abc"),
        ({"sub": "abc@clients", "azp": "azp-id"}, "azp-id"),
        ({"sub": "abc@clients", "azp": "azp-id", "client_id": "cid"}, "cid"),
        ({"sub": "user|123"}, "user|123"),
        ({"sub": "@clients"}, "@clients"),
    ],
)
def test_client_id_rule(rsa_issuer, claims, client_id):
    sub = claims.pop("sub")
    token = make_verifier(rsa_issuer).verify(rsa_issuer.token(sub=sub, **claims))
    assert token.client_id == client_id and token.subject == sub


def test_scopes_union_of_scope_scp_permissions(rsa_issuer):
    raw = rsa_issuer.token(scopes="a b", scp=["c", "d"], permissions=["e", 5, {"x": 1}])
    assert make_verifier(rsa_issuer).verify(raw).scopes == frozenset("abcde")


def test_scopes_wrong_types_contribute_nothing(rsa_issuer):
    raw = rsa_issuer.token(scopes=None, scope=["read:data"], scp=7, permissions="write:data admin")
    token = make_verifier(rsa_issuer, scope_claims=("scope", "scp")).verify(raw)
    # scope as an array is accepted as strings; permissions is not a configured claim here
    assert token.scopes == frozenset({"read:data"})


# --- the verified-token cache ---------------------------------------------------------------------


def test_cache_hit_skips_crypto_but_still_checks_exp(rsa_issuer):
    clock = FakeClock()
    verifier = make_verifier(rsa_issuer, clock=clock)
    raw = rsa_issuer.token(expires_in=60)
    first = verifier.verify(raw)
    assert verifier.verify(raw) is first  # answered from memory
    clock.now += 61
    assert reason_of(verifier, raw) == ("expired", "exp")


def test_failures_are_never_cached(rsa_issuer):
    clock = FakeClock()
    verifier = make_verifier(rsa_issuer, clock=clock)
    raw = rsa_issuer.token(nbf=int(clock.now) + 100)
    assert reason_of(verifier, raw)[0] == "not_yet_valid"
    assert not verifier._cache
    clock.now += 101
    verifier.verify(raw)


def test_cache_entry_dropped_when_key_leaves_the_jwks():
    fake = FakeIssuer()
    clock = FakeClock()
    verifier = make_verifier(fake, clock=clock)
    raw = fake.token()
    verifier.verify(raw)
    fake.rotate(retire_old=True)
    clock.now += 301  # TTL over: the next request refreshes the JWKS, which no longer has the key
    assert reason_of(verifier, raw)[0] == "unknown_kid"


def test_cache_is_bounded():
    fake = FakeIssuer()
    verifier = make_verifier(fake, cache_size=50)
    for _ in range(120):
        verifier.verify(fake.token())
    assert len(verifier._cache) <= 50


def test_keys_unavailable_is_not_invalid_token(rsa_issuer):
    from drf_m2m_auth.errors import JWKSError

    def down(url):
        raise JWKSError("connection refused")

    source = JWKSource(rsa_issuer.issuer, jwks_url="https://x/jwks", fetch=down)
    verifier = TokenVerifier(sources={rsa_issuer.issuer: source}, audiences=[AUD])
    with pytest.raises(KeysUnavailable) as info:
        verifier.verify(rsa_issuer.token())
    assert info.value.status_code == 503 and info.value.retry_after >= 1


def test_numeric_date_bounds_are_finite():
    from drf_m2m_auth.jose import MAX_NUMERIC_DATE

    assert math.isfinite(MAX_NUMERIC_DATE)


@pytest.mark.parametrize(
    "segment",
    ["", "QQ", "QUI", "QUJD", "eyJhIjoxfQ", "-_-_", "A", "QQ==", "QQ=", "Q Q", "QQ\n", "é", "Q+Q/", "a*b", "QUJD\x00"],
)
def test_b64url_decoders_agree(segment):
    """The Python 3.10 fallback decoder accepts and refuses exactly what the strict one does."""
    from drf_m2m_auth import jose

    results = []
    for decode in (jose._b64url_decode_strict, jose._b64url_decode_checked):
        try:
            results.append(decode(segment))
        except (ValueError, TypeError):
            results.append("error")
    assert results[0] == results[1]


# --- a client id with control or format characters is refused -------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"client_id": "svc\nadmin"},
        {"client_id": "svc\x00"},
        {"azp": "svc\u202eadmin"},  # RIGHT-TO-LEFT OVERRIDE (Cf)
        {"sub": "svc\u200b@clients"},  # ZERO WIDTH SPACE (Cf), via the Auth0 sub rule
        {"sub": "svc\x7f@clients"},  # DEL (Cc)
        {"client_id": "svc\u2066x\u2069"},  # bidi isolates (Cf)
        {"client_id": "svc\u2028admin"},  # LINE SEPARATOR (Zl)
    ],
)
def test_client_id_with_control_or_format_characters_is_401(rsa_issuer, claims):
    verifier = make_verifier(rsa_issuer)
    assert reason_of(verifier, rsa_issuer.token(**claims)) == ("invalid_client_id", None)


def test_client_id_with_ordinary_unicode_is_accepted(rsa_issuer):
    verifier = make_verifier(rsa_issuer)
    assert verifier.verify(rsa_issuer.token(client_id="dienst-über-ünïcode")).client_id == "dienst-über-ünïcode"


# --- any JSON type in any header member or claim is a 401, never an exception -----

from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
HEADER_MEMBERS = ["alg", "typ", "kid", "crit", "jku", "x5u", "jwk", "x5c", "cty", "b64", "zip", "enc", "x5t#S256"]
CLAIM_MEMBERS = ["iss", "aud", "sub", "exp", "iat", "nbf", "client_id", "azp", "jti", "scope", "scp", "cnf", "roles"]
_PROPERTY = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTY
@given(st.sampled_from(HEADER_MEMBERS) | st.text(max_size=6), JSON_VALUES)
def test_any_header_member_of_any_json_type_is_accepted_or_401(rsa_issuer, member, value):
    verifier = _property_verifier(rsa_issuer)
    try:
        verifier.verify(rsa_issuer.token(header={member: value}))
    except InvalidToken as exc:
        assert exc.status_code == 401 and exc.reason


@_PROPERTY
@given(st.dictionaries(st.sampled_from(CLAIM_MEMBERS) | st.text(max_size=6), JSON_VALUES, min_size=1, max_size=3))
def test_any_claim_of_any_json_type_is_accepted_or_401(rsa_issuer, members):
    verifier = _property_verifier(rsa_issuer)
    try:
        token = verifier.verify(rsa_issuer.token(**members))
    except InvalidToken as exc:
        assert exc.status_code == 401 and exc.reason
    else:
        assert isinstance(token.client_id, str) and isinstance(token.scopes, frozenset)


_VERIFIERS: dict = {}


def _property_verifier(fake):
    # One verifier per issuer (fetching once), its verified-token cache off so every example is judged.
    if id(fake) not in _VERIFIERS:
        _VERIFIERS[id(fake)] = make_verifier(fake, cache_size=0)
    return _VERIFIERS[id(fake)]
