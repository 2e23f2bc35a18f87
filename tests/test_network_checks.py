"""The opt-in network check (``check --tag drf_m2m_auth_network``, ``m2m_jwks --check``).

Every test talks to a real JWKSServer on 127.0.0.1 (or to a closed loopback port)."""

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from drf_m2m_auth.network_checks import TAG, probe_configured
from drf_m2m_auth.testing import FakeIssuer, JWKSServer


@pytest.fixture
def server():
    with JWKSServer(FakeIssuer(audience="https://api.example")) as srv:
        yield srv


def discovery_settings(srv, **extra):
    return {"ISSUER": srv.fake.issuer, "AUDIENCE": "https://api.example", **extra}


def ids(errors):
    return [e.id for e in errors]


def jwks_check(*args):
    out = io.StringIO()
    try:
        call_command("m2m_jwks", "--check", *args, stdout=out, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_healthy_issuer_by_discovery(settings, server):
    settings.DRF_M2M_AUTH = discovery_settings(server)
    assert run_checks(tags=[TAG]) == []
    assert server.discovery_requests == 1 and server.jwks_requests == 1
    code, out = jwks_check()
    assert code == 0, out
    assert f"ok    {server.fake.issuer}: 1 usable key(s) for RS256 at {server.jwks_url} (from discovery)" in out


def test_trailing_slash_disagreeing_with_the_discovery_document(settings, server):
    without_slash = server.fake.issuer.rstrip("/")
    settings.DRF_M2M_AUTH = {"ISSUER": without_slash, "AUDIENCE": "https://api.example"}
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E042"
    assert f"names issuer {server.fake.issuer!r}, but ISSUER is {without_slash!r}" in error.msg
    assert "Only the trailing slash differs" in error.hint
    assert f"set ISSUER to exactly {server.fake.issuer!r}" in error.hint
    code, out = jwks_check()
    assert code == 1 and "E042" in out and "Only the trailing slash differs" in out
    assert server.jwks_requests == 0  # never fetched keys from a document that names another issuer


def test_another_issuer_entirely(settings, server):
    server.fake.issuer = server.base + "/somebody-else/"
    settings.DRF_M2M_AUTH = {"ISSUER": server.base + "/tenant/", "AUDIENCE": "https://api.example"}
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E042" and "trailing slash" not in error.hint


def test_unreachable_url_is_exit_2(settings):
    issuer = f"http://127.0.0.1:{closed_port()}/tenant/"
    settings.DRF_M2M_AUTH = {"ISSUER": issuer, "AUDIENCE": "https://api.example", "HTTP_TIMEOUT": 2}
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E040" and "Cannot reach the discovery document" in error.msg
    code, out = jwks_check()
    assert code == 2 and "E040" in out


def test_issuer_answering_503_is_unreachable(settings, server):
    server.mode = "down"
    settings.DRF_M2M_AUTH = discovery_settings(server, JWKS_URL=server.jwks_url)
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E040" and "HTTP 503" in error.msg
    assert jwks_check()[0] == 2


def test_wrong_jwks_url_is_a_problem_not_an_outage(settings, server):
    settings.DRF_M2M_AUTH = discovery_settings(server, JWKS_URL=server.base + "/nowhere")
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E043" and "HTTP 404" in error.msg
    assert jwks_check()[0] == 1


def test_not_json_is_a_problem(settings, server):
    server.mode = "html"
    settings.DRF_M2M_AUTH = discovery_settings(server, JWKS_URL=server.jwks_url)
    assert ids(run_checks(tags=[TAG])) == ["drf_m2m_auth.E043"]


def test_empty_key_set(settings, server):
    server.fake.keys = []
    settings.DRF_M2M_AUTH = discovery_settings(server)
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E044" and "holds no keys" in error.msg
    code, out = jwks_check("--json")
    (report,) = json.loads(out)
    assert code == 1 and report["ok"] is False and report["problems"][0]["id"] == "drf_m2m_auth.E044"


def test_no_key_for_algorithms_names_what_the_set_offers(settings, server):
    settings.DRF_M2M_AUTH = discovery_settings(server, ALGORITHMS=["ES256"])
    (error,) = run_checks(tags=[TAG])
    assert error.id == "drf_m2m_auth.E045"
    assert "no usable key for ALGORITHMS ['ES256']" in error.msg and "RS256/RSA" in error.msg
    assert jwks_check()[0] == 1


def test_one_bad_issuer_among_good_ones_and_issuer_filter(settings, server):
    with JWKSServer(FakeIssuer(audience="https://api.example")) as other:
        other.fake.keys = []
        settings.DRF_M2M_AUTH = {
            "ISSUER": [server.fake.issuer, other.fake.issuer],
            "AUDIENCE": "https://api.example",
        }
        reports = {r.issuer: r for r in probe_configured()}
        assert reports[server.fake.issuer].ok and not reports[other.fake.issuer].ok
        assert jwks_check()[0] == 1
        assert jwks_check("--issuer", server.fake.issuer)[0] == 0
        code, out = jwks_check("--issuer", "https://not-configured.example/")
        assert code == 1


def test_never_runs_without_its_tag(settings, server):
    """Plain check, check --deploy and other tags (what runserver and migrate run) never fetch keys."""
    settings.DRF_M2M_AUTH = discovery_settings(server)
    run_checks()
    run_checks(tags=["security", "caches", "drf_m2m_auth"])
    call_command("check", stdout=io.StringIO())
    assert server.discovery_requests == 0 and server.jwks_requests == 0
    # --deploy runs drf-spectacular's schema check, whose security scheme looks up the token URL in
    # the discovery document (contrib.spectacular): that is not this check, which would fetch the JWKS.
    run_checks(include_deployment_checks=True)
    call_command("check", "--deploy", stdout=io.StringIO(), stderr=io.StringIO())
    assert server.jwks_requests == 0
    call_command("check", "--tag", TAG, stdout=io.StringIO())
    assert server.jwks_requests == 1


def test_manage_check_tag_fails_with_the_id(settings, server):
    settings.DRF_M2M_AUTH = discovery_settings(server, ALGORITHMS=["ES256"])
    with pytest.raises(SystemCheckError, match=r"drf_m2m_auth\.E045"):
        call_command("check", "--tag", TAG, stdout=io.StringIO(), stderr=io.StringIO())


def test_check_never_touches_the_shared_cache_or_the_process_keys(settings, server, tmp_path):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    settings.DRF_M2M_AUTH = discovery_settings(server)
    assert jwks_check()[0] == 0 and jwks_check()[0] == 0
    assert server.jwks_requests == 2  # asked the issuer each time: a cache never answers for it
    assert not any(tmp_path.iterdir())  # and wrote nothing the workers would read


def test_check_and_refresh_do_not_combine(settings, server):
    settings.DRF_M2M_AUTH = discovery_settings(server)
    code, _ = jwks_check("--refresh")
    assert code == 1


def test_exit_status_of_a_real_process(server, tmp_path):
    """What a readiness probe sees: the exit status of ``manage.py m2m_jwks --check``."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "probe_settings.py").write_text(
        "from testproject.settings import *  # noqa\n"
        f"DRF_M2M_AUTH = {{'ISSUER': {server.fake.issuer!r}, 'AUDIENCE': 'https://api.example'}}\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{root}", "DJANGO_SETTINGS_MODULE": "probe_settings", "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "django", "m2m_jwks", "--check"]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    server.mode = "down"
    down = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert down.returncode == 2 and "E040" in down.stdout
