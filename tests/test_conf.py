"""The settings table fails closed: an invalid value is a 503 for every request with a token, never 200/500."""

import logging

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from drf_m2m_auth.checks import check_settings
from drf_m2m_auth.conf import DEFAULTS, SETTINGS, m2m_settings, validate
from drf_m2m_auth.dpop_key import DPoPKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

# Every setting whose value picks a behaviour, with a value that is almost right. Before the
# settings table, {"DPOP": "Required"} let plain bearer tokens through (200) and
# {"UNREGISTERED_CLIENTS": "Deny"} was a 500.
WRONG = [
    ("DPOP", "Required", "drf_m2m_auth.E020", "Did you mean 'required'?"),
    ("DPOP", "true", "drf_m2m_auth.E020", None),
    ("UNREGISTERED_CLIENTS", "Deny", "drf_m2m_auth.E010", "Did you mean 'deny'?"),
    ("DPOP_REPLAY_CACHE_DOWN", "Reject", "drf_m2m_auth.E024", "Did you mean 'reject'?"),
    ("REQUIRE_AT_JWT_TYP", "false", "drf_m2m_auth.E012", None),
    ("DPOP_NONCE", 1, "drf_m2m_auth.E012", None),
    ("DPOP_FORWARDED_HEADERS", "yes", "drf_m2m_auth.E012", None),
    ("ALGORITHMS", ["HS256"], "drf_m2m_auth.E005", None),
    ("ALGORITHMS", "none", "drf_m2m_auth.E005", None),
    ("DPOP_ALGORITHMS", ["RS256", "none"], "drf_m2m_auth.E021", None),
    ("SCOPE_CLAIMS", "scope", None, None),  # a bare string is one claim name: valid
    ("CACHE", "defualt", "drf_m2m_auth.E009", "Did you mean 'default'?"),
    ("CACHE_KEY_PREFIX", "prod:api", "drf_m2m_auth.E013", None),
    ("REALM", "api\r\nX-Evil: 1", "drf_m2m_auth.E014", None),
    ("LEEWAY", "5", "drf_m2m_auth.E007", None),
    ("VERIFIED_TOKEN_CACHE_SIZE", 10.5, "drf_m2m_auth.E007", None),
    ("REVOCATION_DB_CHECK_INTERVAL", "60", "drf_m2m_auth.E007", None),
    ("DPOP_PROOF_MAX_AGE", 0, "drf_m2m_auth.E022", None),
    ("TRUSTED_PROXIES", ["10.0.0.0/8", "proxy.internal"], "drf_m2m_auth.E023", None),
    ("MTLS_CERT_HEADER", "X SSL Cert", "drf_m2m_auth.E023", None),
    ("INSECURE_JWKS_HOSTS", "", "drf_m2m_auth.E015", None),
    ("AUDIENSE", "https://api.example.com", "drf_m2m_auth.E002", "Did you mean 'AUDIENCE'?"),
]
INVALID = [w for w in WRONG if w[2] is not None]


@pytest.fixture
def api():
    return APIClient()


def configure(settings, key, value):
    settings.DRF_M2M_AUTH = {**settings.DRF_M2M_AUTH, key: value}


@pytest.mark.parametrize("key,value,check_id,suggestion", INVALID, ids=[f"{w[0]}={w[1]!r}" for w in INVALID])
def test_an_invalid_setting_is_a_503_for_every_request_with_a_token(
    api, m2m_issuer, settings, caplog, key, value, check_id, suggestion
):
    configure(settings, key, value)
    token = m2m_issuer.token(sub="svc-a@clients")
    with caplog.at_level(logging.ERROR, logger="drf_m2m_auth"):
        for _ in range(2):
            response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 503, (key, value, response.status_code, response.content)
            assert response.headers["Retry-After"] == "30"
            assert response.json()["detail"] == "The API's authentication is misconfigured."
        dpop = DPoPKey()
        bound = m2m_issuer.token(sub="svc-a@clients", cnf={"jkt": dpop.thumbprint})
        proof = dpop.proof("GET", "http://testserver/echo/", access_token=bound)
        response = api.get("/echo/", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=proof)
        assert response.status_code == 503, (key, value, response.status_code)
    # logged once per settings change, naming the key, never the token
    logged = [r.getMessage() for r in caplog.records if "every M2M request is answered 503" in r.getMessage()]
    assert len(logged) == 1 and repr(key) in logged[0] and check_id in logged[0] and token not in logged[0]
    # without credentials it is still DRF's plain 401 challenge, not a 500
    assert api.get("/echo/").status_code == 401


@pytest.mark.parametrize("key,value,check_id,suggestion", INVALID, ids=[f"{w[0]}={w[1]!r}" for w in INVALID])
def test_manage_check_reports_the_same_problem_with_its_id(settings, key, value, check_id, suggestion):
    configure(settings, key, value)
    found = [e for e in check_settings() if e.id == check_id]
    assert found and repr(key) in found[0].msg, [(e.id, e.msg) for e in check_settings()]
    if suggestion:
        assert suggestion in found[0].msg


def test_fixing_the_setting_reopens_the_api(api, m2m_issuer, settings):
    configure(settings, "DPOP", "Required")
    token = m2m_issuer.token(sub="svc-a@clients")
    assert api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 503
    configure(settings, "DPOP", "required")
    response = api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401  # now a valid "required": plain bearer refused
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    configure(settings, "DPOP", "allowed")
    assert api.get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_reading_an_invalid_value_raises_naming_the_key(settings):
    configure(settings, "UNREGISTERED_CLIENTS", "Deny")
    with pytest.raises(ImproperlyConfigured, match=r"UNREGISTERED_CLIENTS.*Did you mean 'deny'"):
        m2m_settings.UNREGISTERED_CLIENTS
    assert m2m_settings.REALM == "api"  # a valid key stays readable (commands, admin)
    with pytest.raises(ImproperlyConfigured, match="ConfigurationInvalid|misconfigured"):
        from drf_m2m_auth.verifier import get_verifier

        try:
            get_verifier()
        except Exception as exc:  # the request path's error is a 503, not ImproperlyConfigured
            raise ImproperlyConfigured(f"{type(exc).__name__}: {exc}") from exc


def test_with_an_unknown_key_no_value_is_trusted(settings):
    configure(settings, "LEEWAYY", 5)
    with pytest.raises(ImproperlyConfigured, match=r"'LEEWAYY'.*Did you mean 'LEEWAY'"):
        m2m_settings.LEEWAY


def test_values_come_out_converted(settings):
    settings.DRF_M2M_AUTH = {
        **settings.DRF_M2M_AUTH,
        "LEEWAY": 5,
        "ALGORITHMS": ("RS256", "ES256"),
        "SCOPE_CLAIMS": "scp",
        "MAX_TOKEN_BYTES": 4096.0,
        "REVOCATION_DB_CHECK_INTERVAL": None,
    }
    assert type(m2m_settings.LEEWAY) is float and m2m_settings.LEEWAY == 5.0
    assert m2m_settings.ALGORITHMS == ["RS256", "ES256"] and m2m_settings.SCOPE_CLAIMS == ["scp"]
    assert type(m2m_settings.MAX_TOKEN_BYTES) is int and m2m_settings.REVOCATION_DB_CHECK_INTERVAL is None


def test_ready_records_problems_and_never_raises(settings, caplog):
    settings.DRF_M2M_AUTH = {"DPOP": "Required", "NOPE": 1}
    with caplog.at_level(logging.WARNING, logger="drf_m2m_auth"):
        apps.get_app_config("drf_m2m_auth").ready()
    assert "ISSUER" in caplog.text and "DPOP" in caplog.text and "NOPE" in caplog.text
    assert {p.key for p in m2m_settings.problems} >= {"ISSUER", "AUDIENCE", "DPOP", "NOPE"}


def test_not_a_dict():
    values, problems = validate(["ISSUER"])
    assert values == {} and [p.check_id for p in problems] == ["drf_m2m_auth.E001"]


def test_every_row_has_a_doc_a_check_id_and_a_default_that_validates():
    values, problems = validate({"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "a"}, {"default": {}})
    assert problems == [] and set(values) == set(SETTINGS) == set(DEFAULTS)
    for name, row in SETTINGS.items():
        assert row.doc.strip() and "Default:" not in row.doc, name
        assert row.check_id[0] in "EW" and row.check_id[1:].isdigit(), name
