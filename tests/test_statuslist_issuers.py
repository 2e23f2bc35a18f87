"""Token Status List rules per trusted issuer: each issuer entry's status_list and status_list_hosts.

Two real issuers (two JWKS servers) and their lists served over HTTP on 127.0.0.1: issuer A's entry
says "required", issuer B's says "ignore"; one API trusts both.
"""

import pytest
from rest_framework.test import APIClient

from drf_m2m_auth import conf
from drf_m2m_auth.conf import SETTINGS
from drf_m2m_auth.issuers import build_policies
from drf_m2m_auth.testing import FakeIssuer, JWKSServer
from drf_m2m_auth.token_status import IssuerRules
from drf_m2m_auth.validation import ALLOWED_ALGORITHMS

from .statuslist_support import StatusListServer, list_token

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]

AUD = "https://api.example"
A, B = "https://a.example/", "https://b.example/"


def policies_index(settings_like):
    policies, problems = build_policies(settings_like, allowed_algorithms=ALLOWED_ALGORITHMS)
    assert [p for p in problems if not p.warning] == []
    return {iss: policy for policy in policies for iss in policy.issuers}


class Fleet:
    """Two issuers trusted through ISSUERS entries (or, before the settings table has ISSUERS, the
    entries' policies handed out as conf.issuer_policy does, over a legacy ISSUER list)."""

    def __init__(self, settings, monkeypatch, servers, via_settings):
        self.settings, self.monkeypatch, self.servers, self.via_settings = settings, monkeypatch, servers, via_settings

    def configure(self, entries):
        urls = {A: self.servers[0].jwks_url, B: self.servers[1].jwks_url}
        if self.via_settings:
            self.settings.DRF_M2M_AUTH = {"ISSUERS": [{**e, "jwks_url": urls[e["issuer"]]} for e in entries]}
            return
        self.settings.DRF_M2M_AUTH = {"ISSUER": [A, B], "AUDIENCE": AUD, "JWKS_URL": urls}
        self.monkeypatch.setattr(conf, "issuer_policy", policies_index({"ISSUERS": entries}).get, raising=False)
        self.settings.DRF_M2M_AUTH = {**self.settings.DRF_M2M_AUTH}  # rebuild the checker


@pytest.fixture(params=["ISSUERS setting", "issuer_policy"])
def two_issuers(request, settings, monkeypatch):
    via_settings = request.param == "ISSUERS setting"
    if via_settings and "ISSUERS" not in SETTINGS:
        pytest.skip("the settings table has no ISSUERS")
    servers = [JWKSServer(FakeIssuer(A, AUD)), JWKSServer(FakeIssuer(B, AUD))]
    servers[0].fake.issuer, servers[1].fake.issuer = A, B  # named apart from where their keys are served
    lists = StatusListServer()
    fleet = Fleet(settings, monkeypatch, servers, via_settings)
    entries = [
        {"issuer": A, "audience": AUD, "status_list": "required", "status_list_hosts": ["127.0.0.1"]},
        {"issuer": B, "audience": AUD, "status_list": "ignore"},
    ]
    fleet.configure(entries)
    yield servers[0].fake, servers[1].fake, lists, entries, fleet
    for server in servers:
        server.stop()
    lists.stop()


def get(token):
    return APIClient().get("/echo/", HTTP_AUTHORIZATION=f"Bearer {token}")


def status(uri, idx):
    return {"status_list": {"idx": idx, "uri": uri}}


def test_required_for_one_issuer_ignored_for_the_other(two_issuers):
    a, b, lists, _, _ = two_issuers
    uri_a, uri_b = lists.url("a"), lists.url("b")
    lists.publish(uri_a, list_token(a, uri_a, {1: 1}))
    lists.publish(uri_b, list_token(b, uri_b, {1: 1}))

    missing = get(a.token())  # A requires a status claim
    assert missing.status_code == 401 and "status" in missing.json()["detail"]
    assert get(a.token(status=status(uri_a, 0))).status_code == 200
    revoked = get(a.token(status=status(uri_a, 1)))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert lists.count(uri_a) == 1

    assert get(b.token()).status_code == 200  # B ignores status lists: no claim is fine
    assert get(b.token(status=status(uri_b, 1))).status_code == 200  # revoked in B's list, not looked at
    assert get(b.token(status=status("https://anywhere.example/x", -5))).status_code == 200
    assert lists.count(uri_b) == 0


def test_each_issuer_has_its_own_hosts(two_issuers):
    a, b, lists, entries, fleet = two_issuers
    uri_a = lists.url("a")
    lists.publish(uri_a, list_token(a, uri_a, {}))
    # B now checks lists, with no hosts listed: only B's own host (b.example) may serve them.
    entries[1] = {"issuer": B, "audience": AUD, "status_list": "if_present"}
    fleet.configure(entries)

    # B signs a token pointing at the list host A's entry allows: refused for B, never fetched.
    refused = get(b.token(status=status(uri_a, 0)))
    assert refused.status_code == 401 and "not allowed for its issuer" in refused.json()["detail"]
    assert lists.count(uri_a) == 0
    assert get(a.token(status=status(uri_a, 0))).status_code == 200
    assert lists.count(uri_a) == 1


def test_a_list_signed_by_the_other_issuer_is_refused(two_issuers):
    a, b, lists, _, _ = two_issuers
    uri = lists.url("a")
    lists.publish(uri, list_token(b, uri, {}, iss=A))  # B's key, A's name
    refused = get(a.token(status=status(uri, 0)))
    assert refused.status_code == 401 and "cannot be verified" in refused.json()["detail"]


def test_one_issuer_shorthand_falls_back_to_the_top_level_settings():
    common = {"ISSUER": A, "AUDIENCE": AUD, "STATUS_LIST": "required"}
    for hosts, expected in (
        (None, ["a.example"]),
        (["lists.example"], ["lists.example"]),
        ({A: ["lists.a.example"]}, ["lists.a.example"]),
        ({B: ["lists.b.example"]}, ["a.example"]),
    ):
        rules = IssuerRules(policies_index({**common, "STATUS_LIST_HOSTS": hosts}).get)
        assert rules.mode_for(A) == "required"
        assert rules.allowed_hosts_for(A) == expected, hosts


def test_aliases_and_unknown_issuers():
    index = policies_index(
        {
            "ISSUERS": [
                {"issuer": A, "issuer_aliases": ["https://old-a.example/"], "audience": AUD, "status_list": "ignore"},
                {"issuer": B, "audience": AUD, "algorithms": ["ES256"], "status_list_hosts": ["lists.example"]},
            ]
        }
    )
    rules = IssuerRules(index.get, fallback_algorithms=["RS256"])
    assert rules.mode_for("https://old-a.example/") == "ignore"
    assert rules.allowed_hosts_for("https://old-a.example/") == ["old-a.example"]
    assert (rules.mode_for(B), rules.allowed_hosts_for(B), rules.algorithms_for(B)) == (
        "if_present",
        ["lists.example"],
        ("ES256",),
    )
    # An issuer gone from the settings since its token was verified: still checked, own host only.
    assert rules.mode_for("https://gone.example/") == "if_present"
    assert rules.allowed_hosts_for("https://gone.example/") == ["gone.example"]
    assert rules.algorithms_for("https://gone.example/") == ("RS256",)


def test_a_settings_change_to_required_refuses_a_token_without_a_claim_at_once(two_issuers):
    # authentication skips the status call for a token without a claim once the checker says no
    # issuer requires one (token_status.every_token); a settings change must undo that at once.
    a, _, lists, entries, fleet = two_issuers
    relaxed = [{**entries[0], "status_list": "if_present"}, entries[1]]
    fleet.configure(relaxed)
    token = a.token()
    assert get(token).status_code == 200
    assert get(token).status_code == 200  # the cached token, on the inline path
    fleet.configure(entries)  # A: "required" again
    missing = get(token)
    assert missing.status_code == 401 and "status" in missing.json()["detail"]
    fleet.configure([{**entries[0], "status_list": "ignore"}, entries[1]])
    assert get(token).status_code == 200
    assert get(a.token(status=status(lists.url("a"), 1))).status_code == 200  # ignored: never fetched
    assert lists.count(lists.url("a")) == 0
