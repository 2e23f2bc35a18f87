"""System checks name the bad key; conf.py reloads on override_settings and refuses unknown keys."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from drf_m2m_auth.checks import check_cache, check_settings
from drf_m2m_auth.conf import DEFAULTS, m2m_settings
from drf_m2m_auth.verifier import get_verifier

GOOD = {"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "https://api.example.com"}


def ids(settings, value):
    settings.DRF_M2M_AUTH = value
    return [(e.id, e.msg) for e in check_settings()]


def test_good_settings_pass(settings):
    assert ids(settings, GOOD) == []


@pytest.mark.parametrize(
    "change,check_id,key",
    [
        ({"ISSUER": None}, "drf_m2m_auth.E003", "ISSUER"),
        ({"ISSUER": ""}, "drf_m2m_auth.E003", "ISSUER"),
        ({"AUDIENCE": None}, "drf_m2m_auth.E004", "AUDIENCE"),
        ({"AUDIENCE": [""]}, "drf_m2m_auth.E004", "AUDIENCE"),
        ({"ALGORITHMS": ["none"]}, "drf_m2m_auth.E005", "ALGORITHMS"),
        ({"ALGORITHMS": ["HS256", "RS256"]}, "drf_m2m_auth.E005", "ALGORITHMS"),
        ({"ALGORITHMS": []}, "drf_m2m_auth.E005", "ALGORITHMS"),
        ({"JWKS_URL": "not a url"}, "drf_m2m_auth.E006", "JWKS_URL"),
        ({"JWKS_URL": "http://tenant.auth0.com/jwks"}, "drf_m2m_auth.E006", "JWKS_URL"),
        ({"ISSUER": "http://tenant.auth0.com/"}, "drf_m2m_auth.E006", "ISSUER"),
        ({"JWKS_URL": {"https://other/": "https://other/jwks"}}, "drf_m2m_auth.E006", "JWKS_URL"),
        ({"LEEWAY": "5"}, "drf_m2m_auth.E007", "LEEWAY"),
        ({"HTTP_TIMEOUT": -1}, "drf_m2m_auth.E007", "HTTP_TIMEOUT"),
        ({"SCOPE_CLAIMS": []}, "drf_m2m_auth.E008", "SCOPE_CLAIMS"),
        ({"CACHE": "nope"}, "drf_m2m_auth.E009", "CACHE"),
        ({"UNREGISTERED_CLIENTS": "maybe"}, "drf_m2m_auth.E010", "UNREGISTERED_CLIENTS"),
        ({"AUDIENSE": "x"}, "drf_m2m_auth.E002", "AUDIENSE"),
    ],
)
def test_bad_setting_names_the_key(settings, change, check_id, key):
    found = ids(settings, {**GOOD, **change})
    assert any(i == check_id and key in msg for i, msg in found), found


def test_missing_setting(settings):
    del settings.DRF_M2M_AUTH
    assert [i for i, _ in (lambda: [(e.id, e.msg) for e in check_settings()])()] == ["drf_m2m_auth.E001"]


def test_loopback_http_and_opted_in_hosts_are_fine(settings):
    assert ids(settings, {**GOOD, "JWKS_URL": "http://127.0.0.1:9000/jwks"}) == []
    assert (
        ids(settings, {**GOOD, "JWKS_URL": "http://keys.internal/jwks", "INSECURE_JWKS_HOSTS": ["keys.internal"]}) == []
    )


def test_check_command_fails_at_startup(settings):
    settings.DRF_M2M_AUTH = {**GOOD, "ALGORITHMS": ["HS256"]}
    with pytest.raises(SystemCheckError, match=r"ALGORITHMS"):
        call_command("check")


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
SHARED = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"}}


def test_per_process_cache_warning_says_what_happens(settings):
    settings.DRF_M2M_AUTH = {**GOOD, "REVOCATION_DB_CHECK_INTERVAL": 45}
    settings.CACHES = LOCMEM
    [warning] = check_cache()
    assert warning.id == "drf_m2m_auth.W001"
    assert "LocMemCache" in warning.msg
    assert "reaches other worker processes only at their next database check" in warning.msg
    assert "REVOCATION_DB_CHECK_INTERVAL (45 s)" in warning.msg
    assert "DPoP replay protection is per process" in warning.msg
    assert "stores nothing" not in warning.msg
    settings.DRF_M2M_AUTH = {**GOOD, "REVOCATION_DB_CHECK_INTERVAL": "45"}  # E007 says so; W001 still renders
    assert "(60 s)" in check_cache()[0].msg
    settings.DRF_M2M_AUTH = {**GOOD, "REVOCATION_DB_CHECK_INTERVAL": None}
    [warning] = check_cache()
    assert "never reaches other worker processes" in warning.msg
    settings.DRF_M2M_AUTH = {**GOOD, "REVOCATION_CHECK_INTERVAL": 2}
    settings.CACHES = DUMMY
    [warning] = check_cache()
    assert "DummyCache, which stores nothing" in warning.msg and "nothing is shared or stored" in warning.msg
    assert "DPoP replay claims fall back to each process's own memory" in warning.msg
    assert "within REVOCATION_CHECK_INTERVAL (2 s)" in warning.msg
    settings.DRF_M2M_AUTH = {**GOOD, "CACHE": None}
    [warning] = check_cache()
    assert "is None" in warning.msg and "within REVOCATION_CHECK_INTERVAL (1 s)" in warning.msg
    assert "DPoP replay protection is per process" in warning.msg
    settings.DRF_M2M_AUTH = GOOD
    settings.CACHES = SHARED
    assert check_cache() == []


def test_per_process_cache_warning_is_a_plain_check_not_deploy_only(settings, capsys):
    settings.DRF_M2M_AUTH = GOOD
    settings.CACHES = LOCMEM
    call_command("check")  # warnings do not fail the command; they are printed
    assert "drf_m2m_auth.W001" in capsys.readouterr().err


def test_settings_reload_on_override(settings):
    settings.DRF_M2M_AUTH = {**GOOD, "LEEWAY": 7}
    assert m2m_settings.LEEWAY == 7 and get_verifier().leeway == 7
    settings.DRF_M2M_AUTH = {**GOOD, "LEEWAY": 9}
    assert m2m_settings.LEEWAY == 9 and get_verifier().leeway == 9
    assert m2m_settings.REALM == DEFAULTS["REALM"]


def test_unknown_key_raises_at_use(settings):
    settings.DRF_M2M_AUTH = {**GOOD, "AUDIENSE": "x"}
    with pytest.raises(ImproperlyConfigured, match="AUDIENSE"):
        m2m_settings.ISSUER


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        m2m_settings.NOPE


# --- deploy checks: transport of keys, LEEWAY ---------------------------------------------------------

from drf_m2m_auth.checks import check_deploy_leeway, check_deploy_transport  # noqa: E402


@pytest.mark.parametrize(
    "change,expected",
    [
        ({}, []),
        ({"JWKS_URL": "https://tenant.auth0.com/.well-known/jwks.json"}, []),
        ({"JWKS_URL": "http://keys.internal/jwks", "INSECURE_JWKS_HOSTS": ["keys.internal"]}, ["drf_m2m_auth.E011"]),
        (
            {
                "JWKS_URL": {"https://tenant.auth0.com/": "http://keys.internal/jwks"},
                "INSECURE_JWKS_HOSTS": ["keys.internal"],
            },
            ["drf_m2m_auth.E011"],
        ),
        ({"ISSUER": "http://idp.internal/", "INSECURE_JWKS_HOSTS": ["idp.internal"]}, ["drf_m2m_auth.E011"]),
        ({"JWKS_URL": "http://127.0.0.1:9000/jwks"}, ["drf_m2m_auth.W003"]),
        ({"ISSUER": "http://localhost:8000/issuer/"}, ["drf_m2m_auth.W003"]),
        # iss is only compared as a string when JWKS_URL is given: an http issuer fetches nothing
        ({"ISSUER": "http://idp.internal/", "JWKS_URL": "https://idp.internal/jwks"}, []),
    ],
)
def test_deploy_http_key_transport(settings, change, expected):
    settings.DEBUG = False
    settings.DRF_M2M_AUTH = {**GOOD, **change}
    assert [m.id for m in check_deploy_transport()] == expected


def test_deploy_http_key_transport_is_allowed_in_debug(settings):
    settings.DEBUG = True
    settings.DRF_M2M_AUTH = {**GOOD, "JWKS_URL": "http://keys.internal/jwks", "INSECURE_JWKS_HOSTS": ["keys.internal"]}
    assert check_deploy_transport() == []


def test_deploy_http_error_fails_check_deploy(settings):
    settings.DEBUG = False
    settings.DRF_M2M_AUTH = {
        **GOOD,
        "LEEWAY": 5,
        "JWKS_URL": "http://keys.internal/jwks",
        "INSECURE_JWKS_HOSTS": ["keys.internal"],
    }
    with pytest.raises(SystemCheckError, match="drf_m2m_auth.E011"):
        call_command("check", "--deploy", "--tag", "security")


@pytest.mark.parametrize(
    "leeway,expected", [(0, ["drf_m2m_auth.W002"]), (0.0, ["drf_m2m_auth.W002"]), (5, []), (0.5, []), ("0", [])]
)
def test_deploy_warns_about_zero_leeway(settings, leeway, expected):
    settings.DRF_M2M_AUTH = {**GOOD, "LEEWAY": leeway}
    assert [w.id for w in check_deploy_leeway()] == expected


def test_default_leeway_warns_only_on_deploy(settings):
    settings.DRF_M2M_AUTH = GOOD  # LEEWAY defaults to 0
    assert check_settings() == [] and [w.id for w in check_deploy_leeway()] == ["drf_m2m_auth.W002"]


@pytest.mark.parametrize("value,ok", [(None, True), (0, True), (30.5, True), (-1, False), ("60", False)])
def test_revocation_db_check_interval(settings, value, ok):
    found = ids(settings, {**GOOD, "REVOCATION_DB_CHECK_INTERVAL": value})
    assert (found == []) == ok, found
