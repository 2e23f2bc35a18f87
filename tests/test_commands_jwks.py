"""m2m_jwks: what keys each issuer has, where they came from, how old; --refresh; exit status on failure."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from drf_m2m_auth.conf import reset_state
from drf_m2m_auth.testing import FakeIssuer, JWKSServer


def jwks(*args):
    out = io.StringIO()
    try:
        call_command("m2m_jwks", *args, stdout=out, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


def test_lists_keys_with_provenance(m2m_issuer, m2m_jwks_server):
    first = m2m_issuer.kid
    m2m_issuer.add_key("ES256", kid="ec-1")
    code, out, _ = jwks()
    assert code == 0, out
    assert f"issuer  {m2m_issuer.issuer}" in out
    assert f"jwks_uri   {m2m_jwks_server.jwks_url} (from settings)" in out
    assert "loaded     from network, fetched 0 s ago" in out and "refresh in 300 s" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("    ")}
    assert rows[first][1:5] == ["RSA", "-", "RS256", "sig"]
    # ES256 is not in ALGORITHMS (m2m_issuer's settings were made before the key): not usable, not listed
    assert "ec-1" not in rows


def test_discovery_then_shared_cache_then_forced_refresh(settings):
    with JWKSServer(FakeIssuer(audience="https://api.example")) as server:
        settings.DRF_M2M_AUTH = {"ISSUER": server.fake.issuer, "AUDIENCE": "https://api.example"}
        code, out, _ = jwks()
        assert code == 0 and "(from discovery)" in out and "from network" in out
        assert "1 JWKS, 1 discovery by this process" in out
        reset_state()  # a new process: its memo is empty, the shared cache is not
        code, out, _ = jwks()
        assert code == 0 and "from shared cache" in out and server.jwks_requests == 1
        code, out, _ = jwks("--refresh")
        assert code == 0 and "from network" in out and server.jwks_requests == 2
        assert "refreshed this process only, because the cache 'default' is private to each process" in out


def test_refresh_says_whether_it_reached_the_fleet(settings, tmp_path, m2m_issuer, m2m_jwks_server):
    """--refresh says whether every worker gets the keys (a shared cache) or only itself."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    code, out, _ = jwks("--refresh")
    assert code == 0 and "refreshed for the fleet: the keys are in the shared cache 'default'" in out
    code, out, _ = jwks("--refresh", "--json")
    assert json.loads(out)[0]["refreshed"] == "fleet"
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "CACHE": None}
    code, out, _ = jwks("--refresh", "--json")
    assert json.loads(out)[0]["refreshed"] == "this process"
    assert "refreshed" not in json.loads(jwks("--json")[1])[0]


def test_json(m2m_issuer, m2m_jwks_server):
    code, out, _ = jwks("--json")
    [report] = json.loads(out)
    assert code == 0
    assert report["issuer"] == m2m_issuer.issuer and report["jwks_uri"] == m2m_jwks_server.jwks_url
    assert report["source"] == "network" and report["jwks_uri_from"] == "settings" and report["ok"] is True
    assert 299 <= report["refresh_in_s"] <= 300 and report["error"] is None
    assert report["keys"][0] | {"thumbprint": None} == {
        "kid": m2m_issuer.kid,
        "kty": "RSA",
        "crv": None,
        "alg": "RS256",
        "use": "sig",
        "verifies": ["RS256"],
        "thumbprint": None,
    }


def test_issuer_down_at_start_exits_one(m2m_issuer, m2m_jwks_server):
    m2m_jwks_server.mode = "down"
    code, out, message = jwks()
    assert code == 1 and m2m_issuer.issuer in message
    assert "FAILED     HTTP 503" in out and "NO KEYS: requests get 503" in out


def test_failed_refresh_keeps_serving_and_still_fails_the_command(m2m_issuer, m2m_jwks_server):
    assert jwks()[0] == 0
    m2m_jwks_server.mode = "down"
    code, out, _ = jwks("--refresh")
    assert code == 1 and "serving the last good keys" in out and m2m_issuer.kid in out


def test_unknown_issuer_is_an_error(m2m_issuer):
    code, _, message = jwks("--issuer", "https://nope/")
    assert code == 1 and "not a trusted issuer: 'https://nope/'" in message


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_only_the_named_issuer(settings, args):
    with JWKSServer() as one, JWKSServer() as two:
        settings.DRF_M2M_AUTH = {
            "ISSUER": [one.fake.issuer, two.fake.issuer],
            "AUDIENCE": "x",
            "JWKS_URL": {one.fake.issuer: one.jwks_url, two.fake.issuer: two.jwks_url},
        }
        code, out, _ = jwks("--issuer", two.fake.issuer, *args)
        assert code == 0 and two.fake.issuer in out and one.fake.issuer not in out
        assert one.jwks_requests == 0
