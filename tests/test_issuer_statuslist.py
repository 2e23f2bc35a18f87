"""The local issuer's Token Status Lists: slots in minted tokens, signed lists, revoke/suspend tools."""

from __future__ import annotations

import io
import time

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import include, path
from joserfc import jwt
from joserfc.jwk import KeySet

from drf_m2m_auth.errors import InvalidToken
from drf_m2m_auth.keys import parse_jwks
from drf_m2m_auth.statuscheck import StatusChecker
from drf_m2m_auth.statuslist import verify_status_list_token
from testproject.issuer.conf import issuer_url
from testproject.issuer.models import Api, ClientGrant, IssuedToken, OAuthClient

from .test_issuer import AUD, SECRET, ask

urlpatterns = [path("issuer/", include("testproject.issuer.urls")), path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture
def client():
    return Client(HTTP_HOST="127.0.0.1")


@pytest.fixture
def client_app():
    api = Api.objects.create(identifier=AUD, name="service-b", scopes="read:data", token_lifetime=600)
    app = OAuthClient(client_id="svc-a", name="service-a")
    app.set_secret(SECRET)
    app.save()
    ClientGrant.objects.create(client=app, api=api, scopes="read:data")
    return app


def claims_of(client, token):
    jwks = KeySet.import_key_set(client.get("/issuer/.well-known/jwks.json").json())
    return jwt.decode(token, jwks, algorithms=["RS256"]).claims


def mint(client):
    response = ask(client, audience=AUD)
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    return token, claims_of(client, token)


def path_of(uri):
    return uri[uri.index("/issuer/") :]


def checker_for(client):
    keyset = parse_jwks(client.get("/issuer/.well-known/jwks.json").json(), ["RS256"])

    def fetch(uri):
        response = client.get(path_of(uri), HTTP_ACCEPT="application/statuslist+jwt")
        return response.content.decode(), None

    return StatusChecker(
        key_resolver_for=lambda issuer: lambda kid, alg: keyset.find(kid, alg),
        fetch=fetch,
        algorithms=["RS256"],
        allowed_hosts_for=lambda issuer: ["127.0.0.1"],
        min_ttl=0,
        max_ttl=0,
    )


def status_of(client, claims):
    try:
        checker_for(client).check(claims, claims["iss"])
    except InvalidToken as exc:
        return exc.reason
    return "valid"


def test_every_token_gets_its_own_slot(client, client_app):
    _, first = mint(client)
    _, second = mint(client)
    assert first["status"] == {"status_list": {"idx": 0, "uri": issuer_url() + "statuslists/1"}}
    assert second["status"]["status_list"]["idx"] == 1
    row = IssuedToken.objects.get(jti=second["jti"])
    assert (row.client, row.audience, row.list_number, row.idx, row.status) == (client_app, AUD, 1, 1, 0)


def test_lists_fill_up_then_the_next_one_starts(client, client_app, settings):
    settings.LOCAL_ISSUER_STATUS_LIST_SIZE = 4
    slots = [mint(client)[1]["status"]["status_list"] for _ in range(5)]
    assert [(s["uri"].rsplit("/", 1)[1], s["idx"]) for s in slots] == [("1", 0), ("1", 1), ("1", 2), ("1", 3), ("2", 0)]


def test_the_list_is_a_signed_status_list_token(client, client_app):
    _, claims = mint(client)
    uri = claims["status"]["status_list"]["uri"]
    response = client.get(path_of(uri))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/statuslist+jwt"
    assert response["Cache-Control"] == "max-age=5"
    keyset = parse_jwks(client.get("/issuer/.well-known/jwks.json").json(), ["RS256"])
    verified = verify_status_list_token(
        response.content.decode(),
        uri=uri,
        issuer=issuer_url(),
        key_resolver=keyset.find,
        algorithms=["RS256"],
        now=time.time(),
    )
    assert verified.ttl == 5 and verified.status_list.bits == 2 and verified.status_list.status(0) == 0
    assert client.get("/issuer/statuslists/7").status_code == 404
    assert client.get(path_of(uri), REMOTE_ADDR="10.1.2.3").status_code == 403


def test_command_revokes_suspends_and_restores(client, client_app):
    token, claims = mint(client)
    out = io.StringIO()
    call_command("issuer_token_status", token, "--revoke", stdout=out)
    assert "revoked" in out.getvalue() and "idx 0" in out.getvalue()
    assert status_of(client, claims) == "token_status_invalid"
    call_command("issuer_token_status", claims["jti"], "--suspend", stdout=out)
    assert status_of(client, claims) == "token_status_suspended"
    call_command("issuer_token_status", claims["jti"], "--valid", stdout=out)
    assert status_of(client, claims) == "valid"
    with pytest.raises(CommandError, match="No token"):
        call_command("issuer_token_status", "unknown-jti", "--revoke")
    with pytest.raises(CommandError):
        call_command("issuer_token_status", claims["jti"])  # one of the three is required


def test_admin_actions(client, client_app, admin_client):
    _, claims = mint(client)
    _, other = mint(client)
    row = IssuedToken.objects.get(jti=claims["jti"])
    url = "/admin/issuer/issuedtoken/"
    response = admin_client.post(url, {"action": "revoke", "_selected_action": [row.pk]}, follow=True)
    assert response.status_code == 200 and "revoked" in response.content.decode()
    assert status_of(client, claims) == "token_status_invalid"
    assert status_of(client, other) == "valid"
    admin_client.post(url, {"action": "suspend", "_selected_action": [row.pk]})
    assert status_of(client, claims) == "token_status_suspended"
    admin_client.post(url, {"action": "mark_valid", "_selected_action": [row.pk]})
    assert status_of(client, claims) == "valid"


def test_status_lists_can_be_turned_off(client, client_app, settings):
    settings.LOCAL_ISSUER_STATUS_LISTS = False
    assert "status" not in mint(client)[1]
