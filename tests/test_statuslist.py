"""Token Status List (draft-ietf-oauth-status-list-20), resource-server side, against real lists over HTTP."""

import gzip
import hashlib
import hmac
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
import zlib

import pytest
from django.core.cache.backends.locmem import LocMemCache

from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.fetch import HTTPFetcher
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.shared import SharedCache
from drf_m2m_auth.statuscheck import StatusChecker
from drf_m2m_auth.statuslist import (
    StatusList,
    StatusListInvalid,
    StatusListUnavailable,
    inflate,
    parse_status_claim,
)
from drf_m2m_auth.statuslist_fetch import fetch_status_list
from drf_m2m_auth.testing import FakeClock, FakeIssuer, JWKSServer, b64url, encode_jws, generate_private_key

from .statuslist_support import StatusListServer, encode_lst, list_token, pack


@pytest.fixture
def jwks():
    srv = JWKSServer(FakeIssuer())
    yield srv
    srv.stop()


@pytest.fixture
def lists():
    srv = StatusListServer()
    yield srv
    srv.stop()


@pytest.fixture
def fake(jwks):
    return jwks.fake


@pytest.fixture
def make_checker(jwks):
    source = JWKSource(jwks.fake.issuer, jwks_url=jwks.jwks_url, fetch=HTTPFetcher(timeout=2))

    def make(*, timeout=2.0, max_bytes=1024 * 1024, hosts=("127.0.0.1",), **kwargs):
        kwargs.setdefault("min_ttl", 1)
        return StatusChecker(
            key_resolver_for=lambda issuer: {jwks.fake.issuer: source}[issuer].get_key,
            fetch=lambda uri: fetch_status_list(uri, timeout=timeout, max_bytes=max_bytes),
            algorithms=["RS256", "ES256"],
            allowed_hosts_for=lambda issuer: hosts,
            **kwargs,
        )

    return make


def claims(uri, idx):
    return {"status": {"status_list": {"idx": idx, "uri": uri}}}


def reason_of(checker, fake, uri, idx):
    try:
        checker.check(claims(uri, idx), fake.issuer)
    except InvalidToken as exc:
        return exc.reason
    return "valid"


# --- the list format: the draft's own examples ------------------------------------------------


def test_draft_examples_decode_least_significant_bit_first():
    one = StatusList.from_json({"bits": 1, "lst": "eNrbuRgAAhcBXQ"}, max_inflated=100)
    assert [one.status(i) for i in range(16)] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    two = StatusList.from_json({"bits": 2, "lst": "eNo76fITAAPfAgc"}, max_inflated=100)
    assert [two.status(i) for i in range(12)] == [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    assert one.status(16) is None and one.status(-1) is None


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_roundtrip_every_width(bits):
    statuses = {0: 1, 5: (1 << bits) - 1, 63: 1}
    decoded = StatusList.from_json({"bits": bits, "lst": encode_lst(pack(statuses, bits))}, max_inflated=1000)
    assert [decoded.status(i) for i in range(64)] == [statuses.get(i, 0) for i in range(64)]


@pytest.mark.parametrize(
    "obj",
    [
        {"bits": 3, "lst": encode_lst(b"\0")},
        {"bits": True, "lst": encode_lst(b"\0")},
        {"bits": 1},
        {"bits": 1, "lst": 5},
        {"bits": 1, "lst": "not base64!"},
        {"bits": 1, "lst": b64url(b"not zlib")},
        {"bits": 1, "lst": b64url(zlib.compress(b"\0" * 10)[:-3])},  # truncated stream
        {"bits": 1, "lst": b64url(zlib.compress(b"\0") + b"trailing")},
        [],
    ],
)
def test_malformed_lists_are_refused(obj):
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(obj, max_inflated=1000)


def test_zip_bomb_is_refused_at_the_bound():
    compressor, chunk = zlib.compressobj(9), b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()  # 256 MiB inflated
    assert len(bomb) < 300 * 1024
    with pytest.raises(StatusListInvalid, match="more than 4096 bytes"):
        inflate(bomb, 4096)


@pytest.mark.parametrize(
    "status,expected",
    [
        (None, None),
        ({"other_mechanism": {}}, None),
        ({"status_list": {"idx": 0, "uri": "https://x/1"}}, ("https://x/1", 0)),
        ("string", "token_status_unknown"),
        ({"status_list": []}, "token_status_unknown"),
        ({"status_list": {"idx": -1, "uri": "https://x/1"}}, "token_status_unknown"),
        ({"status_list": {"idx": True, "uri": "https://x/1"}}, "token_status_unknown"),
        ({"status_list": {"idx": 1.0, "uri": "https://x/1"}}, "token_status_unknown"),
        ({"status_list": {"idx": "1", "uri": "https://x/1"}}, "token_status_unknown"),
        ({"status_list": {"idx": 2**60, "uri": "https://x/1"}}, "token_status_unknown"),
        ({"status_list": {"idx": 1}}, "token_status_unknown"),
        ({"status_list": {"idx": 1, "uri": 7}}, "token_status_unknown"),
    ],
)
def test_status_claim_shapes(status, expected):
    body = {} if status is None else {"status": status}
    if isinstance(expected, str):
        with pytest.raises(InvalidToken) as info:
            parse_status_claim(body)
        assert info.value.reason == expected
    else:
        ref = parse_status_claim(body)
        assert (ref and (ref.uri, ref.idx)) == expected


# --- statuses over HTTP -----------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_statuses_over_http(bits, fake, lists, make_checker):
    uri = lists.url(bits)
    statuses = {1: 1} if bits == 1 else {1: 1, 2: 2, 3: 3}
    lists.publish(uri, list_token(fake, uri, statuses, bits=bits, size=16))
    checker = make_checker()
    got = [reason_of(checker, fake, uri, i) for i in range(5)]
    expected = ["valid", "token_status_invalid"]
    expected += ["valid"] * 3 if bits == 1 else ["token_status_suspended", "token_status_unknown", "valid"]
    assert got == expected
    assert reason_of(checker, fake, uri, 16 if bits < 8 else 16) == "token_status_unknown"  # out of range
    assert reason_of(checker, fake, uri, 10**9) == "token_status_unknown"
    assert reason_of(checker, fake, uri, -1) == "token_status_unknown"
    assert lists.count(uri) == 1  # one fetch served every check
    assert lists.accept == ["application/statuslist+jwt"]


def other_issuers_key(kid):
    return (kid, "RS256", generate_private_key("RS256"))


@pytest.mark.parametrize(
    "case",
    [
        "wrong_sub",
        "wrong_iss",
        "typ_at_jwt",
        "typ_missing",
        "alg_none",
        "hmac",
        "foreign_key_same_kid",
        "foreign_key_new_kid",
        "expired",
        "no_iat",
        "bad_ttl",
        "crit",
        "no_status_list",
        "garbage",
        "not_ascii",
        "es256_with_rsa_kid",
    ],
)
def test_lists_that_cannot_be_trusted_are_token_status_unknown(case, fake, lists, make_checker):
    uri = lists.url(case)
    kid = fake.kid
    token = {
        "wrong_sub": lambda: list_token(fake, uri, sub=lists.url("other")),
        "wrong_iss": lambda: list_token(fake, uri, iss="https://attacker.example/"),
        "typ_at_jwt": lambda: list_token(fake, uri, header={"typ": "at+jwt"}),
        "typ_missing": lambda: list_token(fake, uri, header={"typ": None}),
        "alg_none": lambda: encode_jws({"alg": "none", "typ": "statuslist+jwt"}, {"sub": uri, "iat": 1}),
        "hmac": lambda: _hmac_token(uri, kid),
        "foreign_key_same_kid": lambda: list_token(fake, uri, key=other_issuers_key(kid)),
        "foreign_key_new_kid": lambda: list_token(fake, uri, key=other_issuers_key("attacker")),
        "expired": lambda: list_token(fake, uri, exp=int(time.time()) - 10),
        "no_iat": lambda: list_token(fake, uri, omit=("iat",)),
        "bad_ttl": lambda: list_token(fake, uri, ttl=-5),
        "crit": lambda: list_token(fake, uri, header={"crit": ["exp"]}),
        "no_status_list": lambda: list_token(fake, uri, omit=("status_list",)),
        "garbage": lambda: "\x00\xff{not a jwt",
        "not_ascii": lambda: "é.é.é",
        "es256_with_rsa_kid": lambda: list_token(fake, uri, key=(kid, "ES256", generate_private_key("ES256"))),
    }[case]()
    lists.publish(uri, token.encode("utf-8", "surrogatepass") if isinstance(token, str) else token)
    assert reason_of(make_checker(), fake, uri, 0) == "token_status_unknown"


def _hmac_token(uri, kid):
    header = b64url(json.dumps({"alg": "HS256", "typ": "statuslist+jwt", "kid": kid}))
    payload = b64url(
        json.dumps({"sub": uri, "iat": int(time.time()), "status_list": {"bits": 1, "lst": "eNoDAAAAAAE"}})
    )
    signature = hmac.new(b"secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def test_uri_on_a_host_not_allowed_is_never_fetched(fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri, {0: 1}))
    checker = make_checker(hosts=("issuer.example",))
    assert reason_of(checker, fake, uri, 0) == "token_status_unknown"
    for bad in ("http://example.com/statuslists/1", "ftp://127.0.0.1/x", "https://u:p@127.0.0.1/x", "/relative"):
        assert reason_of(make_checker(hosts=("example.com", "127.0.0.1")), fake, bad, 0) == "token_status_unknown"
    assert lists.requests == {}


def test_huge_list_response_is_refused(fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri, {}, size=8 * 200_000, lst=b64url(bytes(range(256)) * 2000)))
    assert reason_of(make_checker(max_bytes=64 * 1024), fake, uri, 0) == "token_status_unknown"


def test_zip_bomb_list_is_refused(fake, lists, make_checker):
    uri = lists.url(1)
    bomb = zlib.compress(b"\0" * (64 << 20), 9)  # 64 MiB inflated, ~64 KiB on the wire
    lists.publish(uri, list_token(fake, uri, lst=b64url(bomb)))
    assert reason_of(make_checker(max_inflated=1 << 20), fake, uri, 0) == "token_status_unknown"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_content_encoding_is_decoded(encoding, fake, lists, make_checker):
    uri = lists.url(1)
    token = list_token(fake, uri, {0: 1}).encode()
    lists.publish(uri, gzip.compress(token) if encoding == "gzip" else zlib.compress(token))
    lists.encoding = encoding
    assert reason_of(make_checker(), fake, uri, 0) == "token_status_invalid"


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_content_encoding_bomb_or_unknown_is_refused(encoding, fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, gzip.compress(b"a" * (16 << 20), 1))  # 16 MiB once decoded, ~70 KiB sent
    lists.encoding = encoding
    assert reason_of(make_checker(max_bytes=1 << 20), fake, uri, 0) == "token_status_unknown"


def test_redirect_is_not_followed(fake, lists, make_checker):
    uri = lists.url(1)
    lists.mode = "redirect"
    with pytest.raises(StatusListUnavailable):
        make_checker().check(claims(uri, 0), fake.issuer)
    assert lists.count(lists.url("elsewhere")) == 0


# --- availability: down, slow, stale-if-error, reject | accept --------------------------------


def test_down_at_first_use_is_503_then_remembered(fake, lists, make_checker):
    uri = lists.url(1)
    lists.mode = "down"
    checker = make_checker(retry=30)
    for _ in range(3):
        with pytest.raises(StatusListUnavailable) as info:
            checker.check(claims(uri, 0), fake.issuer)
    assert info.value.status_code == 503 and info.value.reason == "token_status_unavailable"
    assert lists.count(uri) == 1  # a failure is remembered for `retry` seconds: no fetch storm


def test_down_with_accept_lets_tokens_through_logged_once(fake, lists, make_checker, caplog):
    uri = lists.url(1)
    lists.mode = "down"
    checker = make_checker(unavailable="accept", retry=0)
    with caplog.at_level(logging.WARNING, logger="drf_m2m_auth.statuslist"):
        for _ in range(3):
            checker.check(claims(uri, 0), fake.issuer)
    assert lists.count(uri) == 3
    assert len([r for r in caplog.records if "accepting tokens unchecked" in r.message]) == 1


def test_slow_endpoint_is_unavailable(fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri))
    lists.mode, lists.delay = "slow", 2.0
    with pytest.raises(StatusListUnavailable):
        make_checker(timeout=0.3).check(claims(uri, 0), fake.issuer)


def test_down_after_a_good_fetch_serves_stale_then_503(fake, lists, make_checker):
    uri, clock = lists.url(1), FakeClock()
    lists.publish(uri, list_token(fake, uri, {1: 1}, ttl=10))
    checker = make_checker(clock=clock, stale_if_error=100, retry=1)
    assert reason_of(checker, fake, uri, 1) == "token_status_invalid"
    lists.mode = "down"
    clock.now += 50  # past ttl, inside the stale window: the last good list still answers
    assert reason_of(checker, fake, uri, 0) == "valid"
    assert reason_of(checker, fake, uri, 1) == "token_status_invalid"
    clock.now += 70  # past ttl + stale_if_error
    with pytest.raises(StatusListUnavailable):
        checker.check(claims(uri, 0), fake.issuer)
    lists.mode = "ok"
    clock.now += 2
    assert reason_of(checker, fake, uri, 0) == "valid"


def test_revocation_is_seen_after_ttl_not_before(fake, lists, make_checker):
    uri, clock = lists.url(1), FakeClock()
    lists.publish(uri, list_token(fake, uri, {}, ttl=10))
    checker = make_checker(clock=clock)
    assert reason_of(checker, fake, uri, 3) == "valid"
    lists.publish(uri, list_token(fake, uri, {3: 1}, ttl=10))
    clock.now += 9
    assert reason_of(checker, fake, uri, 3) == "valid"
    clock.now += 2
    assert reason_of(checker, fake, uri, 3) == "token_status_invalid"
    assert lists.count(uri) == 2


@pytest.mark.parametrize(
    "ttl,max_age,exp_in,expected",
    [
        (10, 1000, 3600, 10),  # ttl beats Cache-Control
        (None, 1000, 40, 40),  # then exp
        (None, 30, None, 30),  # then max-age
        (None, None, None, 60),  # then the default
        (1, None, 3600, 5),  # clamped up to min_ttl
        (10**6, None, None, 100),  # clamped down to max_ttl
    ],
)
def test_freshness_rules(ttl, max_age, exp_in, expected, fake, lists, make_checker):
    uri, clock = lists.url(1), FakeClock()
    token = list_token(
        fake, uri, ttl=ttl, **({"omit": ("exp",)} if exp_in is None else {"exp": int(clock.now) + exp_in})
    )
    lists.publish(uri, token)
    lists.max_age = max_age
    checker = make_checker(clock=clock, min_ttl=5, max_ttl=100)
    checker.check(claims(uri, 0), fake.issuer)
    entry = checker._lists[(fake.issuer, uri)]
    assert abs(entry.fresh_until - clock.now - expected) <= 1


def test_mode_required_and_ignore(fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri, {0: 1}))
    with pytest.raises(InvalidToken) as info:
        make_checker(mode_for=lambda issuer: "required").check({}, fake.issuer)
    assert info.value.reason == "token_status_missing"
    make_checker(mode_for=lambda issuer: "ignore").check(claims(uri, 0), fake.issuer)
    make_checker().check({}, fake.issuer)  # if_present: no claim, nothing to check
    assert lists.requests == {}


# --- one fetch per list: threads and a shared cache -----------------------------------------


def test_threads_share_one_fetch(fake, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri, {2: 1}))
    lists.mode, lists.delay = "slow", 0.3
    checker, results = make_checker(), []
    threads = [threading.Thread(target=lambda: results.append(reason_of(checker, fake, uri, 2))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["token_status_invalid"] * 8 and lists.count(uri) == 1


def test_shared_cache_serves_a_second_process_and_refuses_a_mismatched_entry(fake, lists, make_checker):
    uri, other = lists.url(1), lists.url(2)
    lists.publish(uri, list_token(fake, uri, {0: 1}))
    lists.publish(other, list_token(fake, other, {}))
    shared = SharedCache(LocMemCache(f"sl-{uuid.uuid4().hex}", {}), prefix="t")
    assert reason_of(make_checker(shared_cache=shared), fake, uri, 0) == "token_status_invalid"
    assert reason_of(make_checker(shared_cache=shared), fake, uri, 0) == "token_status_invalid"
    assert lists.count(uri) == 1
    # An entry stored under uri's key but naming another list (or signed for another uri) is refused.
    key = shared.key("statuslist", fake.issuer, uri)
    doc = shared.get(key)
    shared.set(key, {**doc, "uri": other}, 60)
    assert reason_of(make_checker(shared_cache=shared), fake, uri, 0) == "token_status_invalid"
    shared.set(key, {**doc, "jws": list_token(fake, other, {})}, 60)
    assert reason_of(make_checker(shared_cache=shared), fake, uri, 0) == "token_status_invalid"
    assert lists.count(uri) == 3


def test_core_modules_import_no_django():
    code = (
        "import sys, drf_m2m_auth.statuslist, drf_m2m_auth.statuscheck; "
        "assert 'django' not in sys.modules and 'rest_framework' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_issuer_keys_unobtainable_makes_the_list_unavailable(fake, jwks, lists, make_checker):
    uri = lists.url(1)
    lists.publish(uri, list_token(fake, uri))
    jwks.mode = "down"
    with pytest.raises(StatusListUnavailable):
        make_checker().check(claims(uri, 0), fake.issuer)


def test_a_cached_token_remembered_valid_is_refused_once_its_list_says_revoked(make_checker, fake, lists):
    """The one-lookup path of a cached token (same claims object) ends with its list's fresh time."""
    clock, uri = FakeClock(), lists.url(1)
    lists.publish(uri, list_token(fake, uri, {}, ttl=10))
    checker = make_checker(clock=clock, min_ttl=1)
    cached = claims(uri, 3)  # a verified-token cache hands out the same claims object every time
    checker.check(cached, fake.issuer)
    lists.publish(uri, list_token(fake, uri, {3: 1}, ttl=10))
    clock.now += 9
    checker.check(cached, fake.issuer)  # still fresh: remembered VALID, no fetch
    assert lists.count(uri) == 1
    assert reason_of(checker, fake, uri, 3) == "valid"  # an equal but new claims object: the list, fresh
    clock.now += 2
    with pytest.raises(InvalidToken) as refused:
        checker.check(cached, fake.issuer)
    assert refused.value.reason == "token_status_invalid" and lists.count(uri) == 2
    for _ in range(3):  # and stays refused: a refusal is never remembered as VALID
        with pytest.raises(InvalidToken):
            checker.check(cached, fake.issuer)
    other = claims(uri, 4)
    checker.check(other, fake.issuer)
    checker.clear()
    lists.publish(uri, list_token(fake, uri, {4: 1}, ttl=10))
    with pytest.raises(InvalidToken):  # clear() forgets what was remembered
        checker.check(other, fake.issuer)
