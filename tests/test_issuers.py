"""ISSUERS entries -> IssuerPolicy: precedence, presets, the shorthand, and every refused shape."""

from __future__ import annotations

import pytest

from drf_m2m_auth.issuers import build_policies

ALLOWED = {"RS256", "PS256", "ES256", "EdDSA"}
TENANT = "0b0b0b0b-1111-2222-3333-444444444444"


def build(settings):
    return build_policies(settings, allowed_algorithms=ALLOWED)


def errors(settings):
    return [str(p) for p in build(settings)[1] if not p.warning]


def test_shorthand_is_exactly_one_entry():
    policies, problems = build({"ISSUER": "https://a.example/", "AUDIENCE": "api", "LEEWAY": 5})
    assert problems == []
    (p,) = policies
    assert (p.issuer, p.audiences, p.jwks_url, p.leeway) == ("https://a.example/", frozenset({"api"}), None, 5.0)
    assert p.algorithms == ("RS256",) and p.client_id_claims == ("client_id", "azp")


def test_legacy_issuer_list_expands_with_a_deprecation_warning():
    policies, problems = build(
        {"ISSUER": ["https://a/", "https://b/"], "AUDIENCE": ["x", "y"], "JWKS_URL": {"https://b/": "https://b/k"}}
    )
    assert [p.issuer for p in policies] == ["https://a/", "https://b/"]
    assert [p.jwks_url for p in policies] == [None, "https://b/k"]
    assert all(p.audiences == {"x", "y"} for p in policies)
    assert [p.warning for p in problems] == [True] and "deprecated" in problems[0].message


def test_entry_beats_preset_beats_top_level():
    settings = {
        "SCOPE_CLAIMS": ["custom"],
        "ALGORITHMS": ["ES256"],
        "ISSUERS": [
            {"issuer": "https://a/", "audience": "x", "preset": "auth0"},
            {"issuer": "https://b/", "audience": "x", "preset": "auth0", "scope_claims": ["scope"]},
            {"issuer": "https://c/", "audience": "x"},
        ],
    }
    a, b, c = build(settings)[0]
    assert a.scope_claims == ("scope", "permissions") and b.scope_claims == ("scope",) and c.scope_claims == ("custom",)
    assert a.algorithms == b.algorithms == c.algorithms == ("ES256",)


def test_presets_name_the_client_their_way():
    entries = [
        {"issuer": "https://auth0/", "audience": "x", "preset": "auth0"},
        {"issuer": "https://okta/", "audience": "x", "preset": "okta"},
        {"issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0", "audience": "x", "preset": "entra"},
        {"issuer": "https://kc/realms/r", "audience": "x", "preset": "keycloak"},
    ]
    auth0, okta, entra, kc = build({"ISSUERS": entries})[0]
    assert auth0.client_id({"sub": "abc@clients"}) == "abc"
    assert auth0.client_id({"azp": "abc", "sub": "other@clients"}) == "abc"
    assert okta.client_id({"cid": "0oa1", "sub": "0oa1"}) == "0oa1"
    assert okta.client_id({"sub": "x@clients"}) == "x@clients"  # the suffix is Auth0's only
    assert entra.client_id({"appid": "app-v1", "sub": "oid"}) == "app-v1"
    assert entra.client_id({"azp": "app-v2", "appid": "other", "sub": "oid"}) == "app-v2"
    assert entra.aliases == (f"https://sts.windows.net/{TENANT}/",)
    assert entra.scope_claims == ("roles", "scp")
    assert kc.client_id({"azp": "svc", "sub": "uuid"}) == "svc"


def test_client_id_claims_of_the_wrong_type_fall_through_to_sub():
    (p,) = build({"ISSUER": "https://a/", "AUDIENCE": "x"})[0]
    assert p.client_id({"client_id": ["x"], "azp": 5, "sub": "s"}) == "s"
    assert p.client_id({"sub": "@clients"}) == "@clients"


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"ISSUERS": [{"issuer": "https://a/"}]}, "ISSUERS[0]['audience']: required"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": ""}]}, "ISSUERS[0]['audience']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "audiance": "y"}]}, "ISSUERS[0]['audiance']: unknown"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "preset": "ping"}]}, "unknown preset 'ping'"),
        (
            {"ISSUERS": [{"issuer": "https://a/", "audience": "x"}, {"issuer": "https://a/", "audience": "y"}]},
            "already trusted by ISSUERS[0]",
        ),
        (
            {
                "ISSUERS": [
                    {"issuer": "https://a/", "audience": "x", "issuer_aliases": ["https://b/"]},
                    {"issuer": "https://b/", "audience": "y"},
                ]
            },
            "'https://b/' is already trusted",
        ),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x"}], "ISSUER": "https://a/"}, "ISSUER cannot be combined"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x"}], "AUDIENCE": "x"}, "AUDIENCE cannot be combined"),
        ({"ISSUERS": []}, "ISSUERS: must be a non-empty list"),
        ({"ISSUERS": ["https://a/"]}, "ISSUERS[0]: must be a dict"),
        ({"ISSUERS": [{"audience": "x"}]}, "ISSUERS[0]['issuer']: required"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "algorithms": ["HS256"]}]}, "['algorithms']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "algorithms": []}]}, "['algorithms']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "leeway": True}]}, "['leeway']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "leeway": float("nan")}]}, "['leeway']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "unregistered_clients": "Deny"}]}, "unregistered"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "status_list": "on"}]}, "['status_list']"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "require_at_jwt_typ": "yes"}]}, "require_at_jwt_typ"),
        ({"ISSUERS": [{"issuer": "https://a/", "audience": "x", "scope_claims": "scope"}]}, "scope_claims"),
        ({"ISSUER": "https://a/", "AUDIENCE": None}, "AUDIENCE: required"),
        ({"ISSUER": "https://a/", "AUDIENCE": "x", "JWKS_URL": {"https://b/": "u"}}, "JWKS_URL: has no URL"),
        ({}, "no trusted issuer"),
    ],
)
def test_refused_configurations_name_the_entry_and_key(settings, fragment):
    found = errors(settings)
    assert any(fragment in e for e in found), found


def test_a_refused_entry_yields_no_policy():
    policies, problems = build(
        {
            "ISSUERS": [
                {"issuer": "https://a/", "audience": "x", "leeway": -1},
                {"issuer": "https://b/", "audience": "x"},
            ]
        }
    )
    assert [p.issuer for p in policies] == ["https://b/"] and len(problems) == 1
