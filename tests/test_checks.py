"""System checks name the bad key; conf.py reloads on override_settings and refuses unknown keys."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from drf_m2m_auth.checks import check_deploy, check_settings
from drf_m2m_auth.conf import DEFAULTS, get_verifier, m2m_settings

GOOD = {"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "https://api.example.com"}


def ids(settings, value):
    settings.DRF_M2M_AUTH = value
    return [(e.id, e.msg) for e in check_settings()]


def test_good_settings_pass(settings):
    assert ids(settings, GOOD) == []


@pytest.mark.parametrize("change,check_id,key", [
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
])
def test_bad_setting_names_the_key(settings, change, check_id, key):
    found = ids(settings, {**GOOD, **change})
    assert any(i == check_id and key in msg for i, msg in found), found


def test_missing_setting(settings):
    del settings.DRF_M2M_AUTH
    assert [i for i, _ in (lambda: [(e.id, e.msg) for e in check_settings()])()] == ["drf_m2m_auth.E001"]


def test_loopback_http_and_opted_in_hosts_are_fine(settings):
    assert ids(settings, {**GOOD, "JWKS_URL": "http://127.0.0.1:9000/jwks"}) == []
    assert ids(settings, {**GOOD, "JWKS_URL": "http://keys.internal/jwks", "INSECURE_JWKS_HOSTS": ["keys.internal"]}) == []


def test_check_command_fails_at_startup(settings):
    settings.DRF_M2M_AUTH = {**GOOD, "ALGORITHMS": ["HS256"]}
    with pytest.raises(SystemCheckError, match=r"ALGORITHMS"):
        call_command("check")


def test_deploy_warns_about_per_process_cache(settings):
    settings.DRF_M2M_AUTH = GOOD
    assert [w.id for w in check_deploy()] == ["drf_m2m_auth.W001"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"}}
    assert check_deploy() == []


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
