"""The local issuer (testproject/issuer), in process: the stand-in for Auth0 must issue what Auth0 issues."""

from __future__ import annotations

import base64
import io
import json
import logging
import time

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import include, path
from joserfc import jwt
from joserfc.jwk import KeySet

from testproject.issuer import keys
from testproject.issuer.conf import issuer_url
from testproject.issuer.models import Api, ClientGrant, OAuthClient, SigningKey

urlpatterns = [path("issuer/", include("testproject.issuer.urls"))]  # the issuer alone, no service-b

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

AUD, OTHER, SECRET = "https://service-b.example", "https://billing.example", "a-long-random-test-secret"
TOKEN_URL = "/issuer/oauth/token"


@pytest.fixture
def client():
    # The issuer is reached over loopback: authlib refuses plain http on any other host.
    return Client(HTTP_HOST="127.0.0.1")


@pytest.fixture
def client_app():
    api = Api.objects.create(identifier=AUD, name="service-b", scopes="read:data write:data", token_lifetime=600)
    Api.objects.create(identifier=OTHER, name="billing", scopes="read:invoices")
    app = OAuthClient(client_id="svc-a", name="service-a")
    app.set_secret(SECRET)
    app.save()
    ClientGrant.objects.create(client=app, api=api, scopes="read:data")
    return app


def basic(client_id="svc-a", secret=SECRET):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def ask(client, auth=None, **form):
    form.setdefault("grant_type", "client_credentials")
    return client.post(TOKEN_URL, form, HTTP_AUTHORIZATION=auth or basic())


def verify(client, token):
    jwks = KeySet.import_key_set(client.get("/issuer/.well-known/jwks.json").json())
    return jwt.decode(token, jwks, algorithms=["RS256"])


def test_discovery_names_the_issuer_exactly_and_its_endpoints(client):
    doc = client.get("/issuer/.well-known/openid-configuration").json()
    assert doc["issuer"] == issuer_url() and doc["issuer"].endswith("/")
    assert doc["token_endpoint"] == issuer_url() + "oauth/token"
    assert doc["jwks_uri"] == issuer_url() + ".well-known/jwks.json"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert client.get("/issuer/.well-known/oauth-authorization-server").json() == doc


def test_token_is_an_rfc9068_access_token_with_auth0_claims(client, client_app):
    before = int(time.time())
    response = ask(client, audience=AUD)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["scope"] == "read:data"
    token = verify(client, body["access_token"])
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "RS256"
    assert token.header["kid"] == SigningKey.objects.get(state="current").kid
    claims = token.claims
    assert claims["iss"] == issuer_url() and claims["aud"] == AUD
    assert claims["sub"] == "svc-a@clients" and claims["client_id"] == claims["azp"] == "svc-a"
    assert claims["scope"] == "read:data" and claims["gty"] == "client-credentials"
    assert before <= claims["iat"] <= time.time() and claims["exp"] == claims["iat"] + 600
    second = verify(client, ask(client, audience=AUD).json()["access_token"]).claims
    assert claims["jti"] and second["jti"] != claims["jti"]


def test_client_secret_post_and_json_bodies_are_accepted(client, client_app):
    form = {"grant_type": "client_credentials", "audience": AUD, "client_id": "svc-a", "client_secret": SECRET}
    assert client.post(TOKEN_URL, form).status_code == 200
    response = client.post(TOKEN_URL, json.dumps(form), content_type="application/json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("auth", [basic(secret="wrong"), basic(client_id="nobody"), None])
def test_bad_credentials_are_invalid_client_with_one_answer(client, client_app, auth):
    if auth is None:  # a deactivated client answers exactly like an unknown one
        OAuthClient.objects.filter(client_id="svc-a").update(is_active=False)
    response = ask(client, auth=auth, audience=AUD)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}
    assert response["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "form, description",
    [
        ({"audience": "https://nowhere.example"}, "Service not found: https://nowhere.example"),
        ({"audience": OTHER}, "Client is not authorized to access 'https://billing.example'."),
        ({"audience": AUD, "scope": "read:data write:data"}, "Client has not been granted scopes: write:data"),
        ({}, "No audience parameter was provided"),
    ],
)
def test_what_auth0_refuses_is_access_denied(client, client_app, form, description):
    response = ask(client, **form)
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert response.json()["error_description"].startswith(description)


def test_scope_defaults_to_the_whole_grant_and_may_be_narrowed(client, client_app):
    ClientGrant.objects.filter(client=client_app).update(scopes="read:data write:data")
    assert ask(client, audience=AUD).json()["scope"] == "read:data write:data"
    assert ask(client, audience=AUD, scope="write:data").json()["scope"] == "write:data"


def test_grant_type_not_allowed_and_unsupported(client, client_app):
    OAuthClient.objects.filter(client_id="svc-a").update(grant_types="")
    response = ask(client, audience=AUD)
    assert (response.status_code, response.json()["error"]) == (403, "unauthorized_client")
    response = ask(client, grant_type="password", audience=AUD)
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    assert client.get(TOKEN_URL).status_code == 405


def test_only_loopback_callers_are_answered(client, client_app):
    response = Client().post(
        TOKEN_URL, {"grant_type": "client_credentials", "audience": AUD}, HTTP_AUTHORIZATION=basic()
    )  # Host: testserver
    assert (response.status_code, response.json()["error"]) == (400, "insecure_transport")
    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials", "audience": AUD},
        HTTP_AUTHORIZATION=basic(),
        REMOTE_ADDR="192.0.2.10",
    )
    assert response.status_code == 403
    assert client.get("/issuer/.well-known/jwks.json", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_jwks_publishes_current_and_next_public_keys_only(client):
    doc = client.get("/issuer/.well-known/jwks.json")
    assert "max-age" in doc["Cache-Control"]
    published = doc.json()["keys"]
    states = dict(SigningKey.objects.values_list("kid", "state"))
    assert sorted(states[k["kid"]] for k in published) == ["current", "next"]
    for key in published:
        assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}  # no d, p, q, dp, dq, qi


def test_rotation_signs_with_the_prepublished_next_key_and_keeps_the_old_one(client, client_app):
    kids_before = {k["kid"] for k in client.get("/issuer/.well-known/jwks.json").json()["keys"]}
    old_token = ask(client, audience=AUD).json()["access_token"]
    out = io.StringIO()
    call_command("issuer_rotate_key", stdout=out)
    new_token = ask(client, audience=AUD).json()["access_token"]
    new_kid = verify(client, new_token).header["kid"]
    assert new_kid in kids_before and new_kid in out.getvalue()
    verify(client, old_token)  # the retired key is still published: its tokens stay verifiable


def test_emergency_rotation_withdraws_the_old_key(client, client_app):
    kids_before = {k["kid"] for k in client.get("/issuer/.well-known/jwks.json").json()["keys"]}
    old_kid, new_kid = keys.rotate(revoke_current=True)
    kids_after = {k["kid"] for k in client.get("/issuer/.well-known/jwks.json").json()["keys"]}
    assert new_kid not in kids_before and new_kid in kids_after and old_kid not in kids_after


def test_issuer_client_command_shows_the_secret_once_and_stores_a_digest(client):
    call_command("issuer_api", AUD, "--scopes", "read:data write:data", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "issuer_client", "create", "service-x", "--client-id", "svc-x", "--grant", f"{AUD}=read:data", stdout=out
    )
    secret = out.getvalue().split("client_secret:")[1].split()[0]
    stored = OAuthClient.objects.get(client_id="svc-x")
    assert secret not in stored.secret_hash and stored.check_client_secret(secret)
    assert ask(client, auth=basic("svc-x", secret), audience=AUD).status_code == 200


def test_issuer_token_command_mints_an_expired_token(client, client_app):
    out = io.StringIO()
    call_command("issuer_token", "svc-a", AUD, "--scope", "read:data", "--expired", stdout=out)
    claims = json.loads(base64.urlsafe_b64decode(out.getvalue().split(".")[1] + "=="))
    assert claims["exp"] < time.time() - 3000


def test_secrets_and_tokens_are_never_logged(client, client_app, caplog):
    with caplog.at_level(logging.DEBUG):
        token = ask(client, audience=AUD).json()["access_token"]
        ask(client, auth=basic(secret="wrong-" + SECRET), audience=AUD)
    assert SECRET not in caplog.text and token not in caplog.text
    assert SECRET not in repr(client_app) and SECRET not in str(client_app)
