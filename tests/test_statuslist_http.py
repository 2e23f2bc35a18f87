"""Token Status List through DRF's request cycle, across processes, and under arbitrary input."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.fetch import HTTPFetcher
from drf_m2m_auth.jwks import JWKSource
from drf_m2m_auth.statuscheck import StatusChecker
from drf_m2m_auth.statuslist import StatusListUnavailable
from drf_m2m_auth.statuslist_fetch import fetch_status_list
from drf_m2m_auth.testing import FakeIssuer, JWKSServer, b64url

from .statuslist_support import StatusListServer, encode_lst, list_token

pytestmark = [pytest.mark.urls("tests.urls")]


@pytest.fixture
def lists():
    srv = StatusListServer()
    yield srv
    srv.stop()


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def status(uri, idx):
    return {"status_list": {"idx": idx, "uri": uri}}


@pytest.mark.django_db
def test_valid_revoked_suspended_through_the_api(m2m_issuer, lists, settings):
    uri = lists.url(1)
    lists.publish(uri, list_token(m2m_issuer, uri, {1: 1, 2: 2}, bits=2))
    api = APIClient()
    assert api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0)))).status_code == 200
    assert api.get("/echo/", **bearer(m2m_issuer.token())).status_code == 200  # no claim: if_present
    for idx, description in ((1, "revoked"), (2, "suspended"), (99, "outside")):
        response = api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, idx))))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert description in response.json()["detail"]
    assert lists.count(uri) == 1


@pytest.mark.django_db
def test_settings_required_ignore_and_hosts(m2m_issuer, lists, settings):
    uri = lists.url(1)
    lists.publish(uri, list_token(m2m_issuer, uri, {0: 1}))
    api, base = APIClient(), settings.DRF_M2M_AUTH
    settings.DRF_M2M_AUTH = {**base, "STATUS_LIST": "required"}
    assert api.get("/echo/", **bearer(m2m_issuer.token())).status_code == 401
    settings.DRF_M2M_AUTH = {**base, "STATUS_LIST": "ignore"}
    assert api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0)))).status_code == 200
    settings.DRF_M2M_AUTH = {**base, "STATUS_LIST_HOSTS": ["issuer.example"]}
    assert api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0)))).status_code == 401
    assert lists.count(uri) == 0
    settings.DRF_M2M_AUTH = {**base, "STATUS_LIST_HOSTS": {m2m_issuer.issuer: ["localhost", "127.0.0.1"]}}
    assert api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0)))).status_code == 401
    assert lists.count(uri) == 1


@pytest.mark.django_db
def test_unobtainable_list_is_503_with_retry_after_or_accepted(m2m_issuer, lists, settings):
    uri = lists.url(1)
    lists.mode = "down"
    api = APIClient()
    response = api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0))))
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "STATUS_LIST_UNAVAILABLE": "accept"}
    assert api.get("/echo/", **bearer(m2m_issuer.token(status=status(uri, 0)))).status_code == 200


@pytest.mark.django_db
def test_a_token_failing_its_own_checks_never_causes_a_fetch(m2m_issuer, lists):
    uri = lists.url(1)
    api = APIClient()
    assert api.get("/echo/", **bearer(m2m_issuer.token(expires_in=-5, status=status(uri, 0)))).status_code == 401
    assert api.get("/echo/", **bearer(m2m_issuer.token(aud="other", status=status(uri, 0)))).status_code == 401
    assert lists.requests == {}


def test_four_processes_share_one_fetch(lists, tmp_path):
    """Real processes, a FileBasedCache as the shared cache: a cold fleet fetches a list once."""
    jwks = JWKSServer(FakeIssuer())
    try:
        fake, uri = jwks.fake, lists.url(1)
        lists.publish(uri, list_token(fake, uri, {3: 1}))
        lists.mode, lists.delay = "slow", 0.3  # a slow list: the others must wait, not fetch
        script = textwrap.dedent(f"""
            import sys, time
            import django
            from django.conf import settings
            settings.configure(CACHES={{"default": {{"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                                  "LOCATION": {str(tmp_path)!r}}}}})
            django.setup()
            from django.core.cache import cache
            from drf_m2m_auth.errors import InvalidToken
            from drf_m2m_auth.fetch import HTTPFetcher
            from drf_m2m_auth.jwks import JWKSource
            from drf_m2m_auth.shared import SharedCache
            from drf_m2m_auth.statuscheck import StatusChecker
            from drf_m2m_auth.statuslist_fetch import fetch_status_list
            src = JWKSource({fake.issuer!r}, jwks_url={jwks.jwks_url!r}, fetch=HTTPFetcher(),
                            shared_cache=SharedCache(cache, prefix="fleet"))
            checker = StatusChecker(key_resolver_for=lambda issuer: src.get_key, fetch=fetch_status_list,
                                    algorithms=["RS256"], allowed_hosts_for=lambda issuer: ["127.0.0.1"],
                                    shared_cache=SharedCache(cache, prefix="fleet"))
            time.sleep(max(0, float(sys.argv[1]) - time.time()))
            claims = {{"status": {{"status_list": {{"idx": 3, "uri": {uri!r}}}}}}}
            try:
                checker.check(claims, {fake.issuer!r})
                print("valid")
            except InvalidToken as exc:
                print(exc.reason)
        """)
        start_at = str(time.time() + 3)
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, start_at],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        assert [out.strip() for out, _ in outputs] == ["token_status_invalid"] * 4, outputs
        assert lists.count(uri) == 1
    finally:
        jwks.stop()


# --- never a 500: any claim shape, any list body -------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def world():
    jwks, lists = JWKSServer(FakeIssuer()), StatusListServer()
    source = JWKSource(jwks.fake.issuer, jwks_url=jwks.jwks_url, fetch=HTTPFetcher(timeout=2))
    yield jwks.fake, lists, source
    jwks.stop()
    lists.stop()


def _bodies(fake, uri):
    not_none = json_values.filter(lambda v: v is not None)
    signed = st.builds(
        lambda bits, lst, sub, ttl, typ: list_token(
            fake, uri if sub else uri + "x", bits=bits, lst=lst, ttl=ttl, header={"typ": typ}
        ),
        st.one_of(st.sampled_from([1, 2, 4, 8]), json_values),
        st.one_of(
            st.builds(lambda b: encode_lst(b), st.binary(max_size=64)),
            st.text(max_size=40),
            not_none,
        ),
        st.booleans(),
        st.one_of(st.none(), st.integers(-5, 10**12), st.floats(), st.text(max_size=3)),
        st.sampled_from(["statuslist+jwt", "application/statuslist+jwt", "JWT", ""]),
    )
    raw = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode))
    parts = st.lists(st.binary(max_size=60).map(b64url), min_size=1, max_size=4).map(lambda p: ".".join(p).encode())
    return st.one_of(signed.map(str.encode), raw, parts)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_claim_and_any_list_is_401_or_503_never_an_error(world, data):
    fake, lists, source = world
    uri = lists.url(1)
    lists.publish(uri, data.draw(_bodies(fake, uri)))
    claim = data.draw(
        st.one_of(
            json_values,
            st.fixed_dictionaries({"status_list": st.fixed_dictionaries({"idx": json_values, "uri": json_values})}),
            st.builds(lambda idx: {"status_list": {"idx": idx, "uri": uri}}, st.integers(-(2**70), 2**70)),
        )
    )
    checker = StatusChecker(
        key_resolver_for=lambda issuer: source.get_key,
        fetch=lambda u: fetch_status_list(u, timeout=2),
        algorithms=["RS256"],
        allowed_hosts_for=lambda issuer: ["127.0.0.1"],
        retry=0,
    )
    try:
        checker.check({"status": claim}, fake.issuer)
    except (InvalidToken, StatusListUnavailable):
        pass
