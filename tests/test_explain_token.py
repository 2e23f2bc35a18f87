"""m2m_explain_token against a real loopback JWKS: every step in words, the verdict from the real path."""

import datetime as dt
import io
import json
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from drf_m2m_auth import revocation
from drf_m2m_auth.models import Client, RevokedToken
from drf_m2m_auth.testing import FakeIssuer, JWKSServer, encode_jws

pytestmark = pytest.mark.django_db


def explain(*args, stdin=None, monkeypatch=None):
    """(exit status, stdout) as an operator's shell would see them."""
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        call_command("m2m_explain_token", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def lines(output, status):
    return [line for line in output.splitlines() if line.startswith(status + "  ")]


def fails(output):
    return [line.split()[1] for line in lines(output, "FAIL")]


def verdict(output):
    return next(line for line in output.splitlines() if line.startswith("verdict"))


# --- the three common failures: wrong audience, expired, wrong issuer (and the unknown kid) ---------------


def test_wrong_audience(m2m_issuer):
    code, out = explain(m2m_issuer.token(aud=["https://service-a.example", "https://other"]))
    assert code == 1 and fails(out) == ["aud"]
    assert (
        f"aud is ['https://service-a.example', 'https://other'] but AUDIENCE expects "
        f"'{m2m_issuer.audience}' [bad_audience]"
    ) in out
    assert "REJECTED: 401 invalid_token [bad_audience]" in verdict(out)


def test_issuer_without_trailing_slash(m2m_issuer):
    iss = m2m_issuer.issuer.rstrip("/")
    code, out = explain(m2m_issuer.token(iss=iss))
    assert code == 1 and fails(out) == ["iss"]
    assert f"iss '{iss}' has no trailing slash but ISSUER is '{m2m_issuer.issuer}'" in out
    assert "SKIP  key        not looked up" in out
    assert "[bad_issuer]" in verdict(out)


def test_expired(m2m_issuer):
    code, out = explain(m2m_issuer.token(expires_in=-42))
    assert code == 1 and fails(out) == ["exp"]
    line = lines(out, "FAIL")[0]
    assert "expired 4" in line and "s ago" in line and "LEEWAY is 0 s [expired]" in line
    assert "[expired] The token has expired." in verdict(out)


def test_unknown_kid_says_when_the_jwks_was_fetched_and_what_it_holds(m2m_issuer, m2m_jwks_server):
    code, out = explain(m2m_issuer.token(kid="rotated-key-2"))
    assert code == 1 and fails(out) == ["key"]
    line = lines(out, "FAIL")[0]
    assert "kid 'rotated-key-2' not in the JWKS fetched 0 s ago" in line
    assert m2m_jwks_server.jwks_url in line and f"it holds ['{m2m_issuer.kid}']" in line
    assert "JWKS_REFRESH_COOLDOWN (30 s)" in line and "[unknown_kid]" in verdict(out)


def test_every_problem_is_reported_not_only_the_first(m2m_issuer):
    token = m2m_issuer.token(expires_in=-42, aud="https://x", header={"typ": "logout+jwt"})
    code, out = explain(token)
    assert code == 1 and fails(out) == ["typ", "exp", "aud"]
    assert "[bad_typ]" in verdict(out)  # the verifier stops at the first


# --- accepted, input forms, never the token ---------------------------------------------------------------


def test_accepted_token_exits_zero_and_names_the_client(m2m_issuer):
    code, out = explain(m2m_issuer.token(sub="svc-a@clients", scopes=["read:data", "write:data"]))
    assert code == 0 and fails(out) == []
    assert "ACCEPTED: client 'svc-a', scopes read:data write:data" in verdict(out)
    assert "scope claim present; scp claim absent; permissions claim absent" in out


def test_auth0_rbac_permissions_claim(m2m_issuer):
    _, out = explain(m2m_issuer.token(scopes=None, permissions=["read:data"]))
    assert "scope claim absent; scp claim absent; permissions claim present" in out


def test_scopes_from_an_ignored_claim_are_flagged(m2m_issuer, settings):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "SCOPE_CLAIMS": ["scope"]}
    code, out = explain(m2m_issuer.token(scopes=None, permissions=["read:data"]))
    assert code == 0
    assert "WARN  scopes     no scopes: scope claim absent, permissions present but not in SCOPE_CLAIMS" in out


def test_stdin_and_bearer_prefix(m2m_issuer, monkeypatch):
    token = m2m_issuer.token()
    code, out = explain("-", stdin=f"Bearer {token}\n", monkeypatch=monkeypatch)
    assert code == 0 and "ACCEPTED" in out


def test_the_token_is_never_printed_whole(m2m_issuer):
    token = m2m_issuer.token(expires_in=-1)
    head, payload, signature = token.split(".")
    for args in ((token,), (token, "--json")):
        _, out = explain(*args)
        assert token not in out and payload not in out and signature not in out
        assert token[:12] in out


def test_json_output(m2m_issuer):
    code, out = explain(m2m_issuer.token(aud="https://elsewhere"), "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["verdict"] == {
        "accepted": False,
        "status": 401,
        "error": "invalid_token",
        "reason": "bad_audience",
        "description": "The token is not meant for this API (aud).",
    }
    assert [s["check"] for s in doc["steps"] if s["status"] == "FAIL"] == ["aud"]
    assert doc["claims"]["aud"] == "https://elsewhere" and doc["header"]["alg"] == "RS256"


def test_no_token_is_a_usage_error(m2m_issuer):
    with pytest.raises(CommandError, match="no token given"):
        call_command("m2m_explain_token", "  ")


# --- the explanation agrees with the verifier: the first FAIL carries the verifier's reason ---------------


def _cases(fake):
    other = FakeIssuer(kid=fake.kid)  # same kid, another private key
    now = int(time.time())
    return {
        "malformed": "abc.def",
        "non_ascii": fake.token() + "é",
        "too_large": fake.token(padding="x" * 9000),
        "alg_none": encode_jws({"alg": "none", "typ": "JWT"}, fake.claims()),
        "hs256": encode_jws({"alg": "HS256", "kid": fake.kid}, fake.claims(), signature=b"x" * 32),
        "crit": fake.token(header={"crit": ["exp"], "exp": 1}),
        "bad_typ": fake.token(header={"typ": "id_token+jwt"}),
        "kid_int": fake.token(kid=7),
        "bad_issuer": fake.token(iss="https://evil.example/"),
        "unknown_kid": fake.token(kid="nope"),
        "bad_signature": other.token(iss=fake.issuer, aud=fake.audience),
        "missing_exp": fake.token(omit=("exp",)),
        "missing_sub": fake.token(omit=("sub",)),
        "exp_string": fake.token(exp="tomorrow"),
        "expired": fake.token(expires_in=-10),
        "iat_future": fake.token(iat=now + 60),
        "nbf_future": fake.token(nbf=now + 60),
        "bad_audience": fake.token(aud=["https://a", "https://b"]),
        "empty_sub": fake.token(sub="  "),
        "client_id_int": fake.token(client_id=5),
        "client_id_newline": fake.token(client_id="svc\nadmin"),
        "cnf_unusable": fake.token(cnf={"x5t": "abc"}),
    }


CASES = sorted(_cases(FakeIssuer()))


@pytest.mark.parametrize("case", CASES)
def test_first_fail_is_the_verifiers_reason(m2m_issuer, case):
    token = _cases(m2m_issuer)[case]
    code, out = explain(token, "--json")
    doc = json.loads(out)
    first = next(s for s in doc["steps"] if s["status"] == "FAIL")
    assert code == 1 and doc["verdict"]["accepted"] is False
    assert first["reason"] == doc["verdict"]["reason"], (case, first, doc["verdict"])
    assert not any(s["check"] == "verifier" for s in doc["steps"]), doc["steps"]


def test_revoked_client_and_jti_come_from_the_real_revocation_path(m2m_issuer):
    Client.objects.create(client_id="svc-a", name="A", is_active=False)
    code, out = explain(m2m_issuer.token(sub="svc-a@clients"))
    assert code == 1 and "FAIL  client     The client has been deactivated. [client_inactive]" in out
    Client.objects.filter(client_id="svc-a").update(is_active=True)
    RevokedToken.objects.revoke("jti-1", timezone.now() + dt.timedelta(hours=1))
    revocation.reset()
    code, out = explain(m2m_issuer.token(sub="svc-a@clients", jti="jti-1"))
    assert code == 1 and "[jti_revoked]" in out


def test_keys_unobtainable_is_explained_with_the_fetch_error(m2m_issuer, m2m_jwks_server):
    m2m_jwks_server.mode = "down"
    code, out = explain(m2m_issuer.token())
    assert code == 1 and fails(out) == ["key"]
    assert "no signing keys obtainable for this issuer" in out and "HTTP 503" in out
    assert "REJECTED: 503 temporarily_unavailable [keys_unavailable]" in verdict(out)


@pytest.mark.slow
def test_exit_codes_from_a_real_process(tmp_path):
    """Discovery through the issuer, in a fresh process: 0 accepted, 1 rejected, 2 usage."""
    with JWKSServer(FakeIssuer(audience="https://service-b.example")) as server:
        env = {
            "TESTPROJECT_SQLITE": str(tmp_path / "db.sqlite3"),
            "PATH": "/usr/bin:/bin",
            "M2M_ISSUER": server.fake.issuer,
            "M2M_AUDIENCE": "https://service-b.example",
        }
        manage = [sys.executable, "testproject/manage.py"]

        def run(*args, stdin=None):
            return subprocess.run(manage + list(args), env=env, capture_output=True, text=True, timeout=60, input=stdin)

        assert run("migrate", "-v0").returncode == 0
        ok = run("m2m_explain_token", "-", stdin=server.fake.token())
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "found by discovery" in ok.stdout
        bad = run("m2m_explain_token", "-", stdin=server.fake.token(expires_in=-5))
        assert bad.returncode == 1 and "token not accepted (expired)" in bad.stderr
        assert run("m2m_explain_token").returncode == 2


def test_audience_differing_by_a_trailing_slash_is_pointed_out(m2m_issuer):
    code, out = explain(m2m_issuer.token(aud=m2m_issuer.audience + "/"))
    assert code == 1 and "(they differ only by a trailing slash: the match is exact)" in out


def test_entra_v1_issuer_against_a_v2_setting_is_named(m2m_issuer, settings):
    tenant = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
    v2 = f"https://login.microsoftonline.com/{tenant}/v2.0"
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, "ISSUER": v2, "JWKS_URL": {v2: settings.DRF_M2M_AUTH["JWKS_URL"]}}
    code, out = explain(m2m_issuer.token(iss=f"https://sts.windows.net/{tenant}/"))
    assert code == 1 and "is an Entra ID v1 issuer but ISSUER is" in out and "accessTokenAcceptedVersion" in out


def test_every_claim_problem_is_reported_including_the_client_id(m2m_issuer):
    """diagnostics runs every rule: an expired token for another audience with a bad client id shows all three."""
    token = m2m_issuer.token(expires_in=-10, aud="https://other.example", client_id="svc\u202eadmin")
    code, out = explain(token, "--json")
    failed = {s["reason"] for s in json.loads(out)["steps"] if s["status"] == "FAIL"}
    assert code == 1 and {"expired", "bad_audience", "invalid_client_id"} <= failed
