"""scopes.py and principal.py: pure functions, no Django."""

import pytest

from drf_m2m_auth.principal import client_id_from_claims
from drf_m2m_auth.scopes import resolve_required, scopes_from_claims


def test_scope_string_and_arrays():
    claims = {"scope": " a  b ", "scp": ["c", "d e", "", 3], "permissions": ["f"], "other": "g"}
    assert scopes_from_claims(claims) == frozenset("abcf")
    assert scopes_from_claims({"scp": "x y"}) == frozenset("xy")  # Entra's space-delimited scp
    assert scopes_from_claims({"scope": {"a": 1}, "permissions": 5}) == frozenset()


def test_resolve_required():
    spec = {"list": ["r"], "GET": ["g"], "POST": ["p"]}
    assert resolve_required(spec, action="list", method="get") == {"r"}
    assert resolve_required(spec, action="retrieve", method="GET") == {"g"}
    assert resolve_required(spec, action=None, method="post") == {"p"}
    assert resolve_required(spec, action=None, method="DELETE") is None
    assert resolve_required(["a", "b"], action=None, method="GET") == {"a", "b"}
    assert resolve_required([], action=None, method="GET") == frozenset()
    with pytest.raises(TypeError):
        resolve_required("a", action=None, method="GET")
    with pytest.raises(TypeError):
        resolve_required({"GET": "a"}, action=None, method="GET")


def test_client_id_from_claims():
    assert client_id_from_claims({"sub": "x@clients"}) == "x"
    assert client_id_from_claims({"sub": "x@clients", "azp": "y"}) == "y"
    assert client_id_from_claims({"sub": "x", "azp": 5, "client_id": ""}) == "x"
