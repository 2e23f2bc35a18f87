"""drf-spectacular: an oauth2 clientCredentials scheme with the union of scopes, per-operation scopes."""

import json
import subprocess
import sys

import pytest
from django.core.management import call_command

pytest.importorskip("drf_spectacular")

SCHEMA_CLASS = "drf_spectacular.openapi.AutoSchema"


@pytest.fixture
def spectacular(settings, m2m_issuer):
    if "drf_spectacular" not in settings.INSTALLED_APPS:  # testproject adds it when it is installed
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "drf_spectacular"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_SCHEMA_CLASS": SCHEMA_CLASS}
    return settings


def schema_for(urlconf, *extra, tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--format", "openapi-json", "--urlconf", urlconf, "--file", str(out), *extra
    )
    return json.loads(out.read_text())


def security(schema, path, method):
    return schema["paths"][path][method]["security"]


def test_service_b_schema_validates_with_per_operation_scopes(spectacular, m2m_jwks_server, tmp_path):
    schema = schema_for("testproject.api.urls", "--fail-on-warn", tmp_path=tmp_path)
    scheme = schema["components"]["securitySchemes"]["m2mOAuth2"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"] == {
        "clientCredentials": {
            "tokenUrl": m2m_jwks_server.base + "/oauth/token",
            "scopes": {"read:data": "", "write:data": ""},
        }
    }
    assert "https://api.example" in scheme["description"]
    assert security(schema, "/data/", "get") == [{"m2mOAuth2": ["read:data"]}]
    assert security(schema, "/data/{id}/", "get") == [{"m2mOAuth2": ["read:data"]}]
    assert security(schema, "/data/", "post") == [{"m2mOAuth2": ["write:data"]}]


def test_dict_spec_by_action_and_by_method(spectacular, tmp_path):
    """tests/urls.py: DataViewSet maps list/create by action, GET/DELETE by method; update has no entry."""
    schema = schema_for("tests.urls", tmp_path=tmp_path)
    assert security(schema, "/data/", "get") == [{"m2mOAuth2": ["read:data"]}]  # action "list"
    assert security(schema, "/data/", "post") == [{"m2mOAuth2": ["write:data"]}]  # action "create"
    assert security(schema, "/data/{id}/", "get") == [{"m2mOAuth2": ["read:other"]}]  # method GET
    assert security(schema, "/data/{id}/", "put") == [{"m2mOAuth2": []}]  # denied: no entry...
    assert list(schema["paths"]["/data/{id}/"]["put"]["responses"]) == ["403"]  # ...and shown as such
    assert security(schema, "/echo/", "post") == [{"m2mOAuth2": ["read:data"]}]  # a list: every method
    assert security(schema, "/and-allow/", "get") == [{"m2mOAuth2": ["write:data"]}]  # inside &
    assert security(schema, "/not/", "get") == [{"m2mOAuth2": []}]  # ~HasScopes requires none
    scopes = schema["components"]["securitySchemes"]["m2mOAuth2"]["flows"]["clientCredentials"]["scopes"]
    assert list(scopes) == ["read:data", "read:other", "write:data"]  # the union, sorted


def test_settings_override_token_url_and_describe_scopes(spectacular, tmp_path):
    from drf_spectacular.settings import patched_settings  # its settings are read once, at import

    with patched_settings(
        {"OAUTH2_TOKEN_URL": "https://tenant.auth0.com/oauth/token", "OAUTH2_SCOPES": {"read:data": "Read the records"}}
    ):
        schema = schema_for("testproject.api.urls", tmp_path=tmp_path)
    flow = schema["components"]["securitySchemes"]["m2mOAuth2"]["flows"]["clientCredentials"]
    assert flow == {
        "tokenUrl": "https://tenant.auth0.com/oauth/token",
        "scopes": {"read:data": "Read the records", "write:data": ""},
    }


def test_discovery_down_guesses_and_warns(spectacular, m2m_jwks_server, tmp_path, capsys):
    m2m_jwks_server.mode = "down"
    schema = schema_for("testproject.api.urls", tmp_path=tmp_path)
    flow = schema["components"]["securitySchemes"]["m2mOAuth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == m2m_jwks_server.fake.issuer.rstrip("/") + "/oauth/token"
    assert "OAUTH2_TOKEN_URL" in capsys.readouterr().err


def test_not_imported_without_drf_spectacular():
    """With drf-spectacular hidden, django.setup() imports no drf_spectacular module and auth still works."""
    code = (
        "import sys, importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name.startswith('drf_spectacular') else real(name, *a)\n"
        "import django, os\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'testproject.settings'\n"
        "django.setup()\n"
        "assert not [m for m in sys.modules if m.startswith('drf_spectacular')], 'imported'\n"
        "assert 'drf_m2m_auth.contrib.spectacular' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_loaded_automatically_when_installed():
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    from drf_m2m_auth.authentication import M2MJWTAuthentication

    match = OpenApiAuthenticationExtension.get_match(M2MJWTAuthentication())
    assert match is not None and match.name == "m2mOAuth2"


@pytest.mark.django_db
def test_testproject_serves_its_schema(client):
    """/api/schema/ on the test project: the oauth2 scheme and per-operation scopes, over HTTP."""
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:300]
    schema = json.loads(response.content)
    assert schema["components"]["securitySchemes"]["m2mOAuth2"]["type"] == "oauth2"
    assert schema["paths"]["/data/"]["post"]["security"] == [{"m2mOAuth2": ["write:data"]}]


def test_an_operation_no_token_can_reach_is_documented_as_403_only(spectacular, tmp_path, capsys):
    """tests/urls.py's DataViewSet has no entry for update: every PUT is a 403, and the schema says so."""
    schema = schema_for("tests.urls", tmp_path=tmp_path)
    put = schema["paths"]["/data/{id}/"]["put"]
    assert list(put["responses"]) == ["403"]
    description = put["responses"]["403"]["description"]
    assert description.startswith("Forbidden for every access token: no scope grants this operation")
    assert "no entry for action 'update' nor method PUT" in description
    # the reachable operations of the same view keep their real responses
    assert list(schema["paths"]["/data/{id}/"]["get"]["responses"]) == ["200"]
    assert list(schema["paths"]["/data/"]["post"]["responses"]) == ["201"]
    assert "no entry for action 'update' nor method PUT" in capsys.readouterr().err  # and it warns


def test_the_install_guide_viewset_validates_with_fail_on_warn(spectacular, tmp_path):
    """docs/guide/install.rst's OrderViewSet (run from the document by tests/doc_examples_app)."""
    schema = schema_for("tests.doc_examples_app.urls", "--fail-on-warn", tmp_path=tmp_path)
    expected = {
        ("/orders/", "get"): ["read:orders"],
        ("/orders/", "post"): ["write:orders"],
        ("/orders/{id}/", "get"): ["read:orders"],
        ("/orders/{id}/", "put"): ["write:orders"],
        ("/orders/{id}/", "patch"): ["write:orders"],
        ("/orders/{id}/", "delete"): ["admin:orders"],
    }
    for (path, method), scopes in expected.items():
        assert security(schema, path, method) == [{"m2mOAuth2": scopes}], (path, method)
        assert "403" not in schema["paths"][path][method]["responses"]
