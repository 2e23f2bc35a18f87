"""ids.py: the client-id rule, the escaping used in logs, messages and the admin, the jti digest."""

from __future__ import annotations

import hashlib

import pytest

from drf_m2m_auth.ids import client_id_problem, escape, jti_digest


@pytest.mark.parametrize(
    "text, shown",
    [
        ("svc-a", "svc-a"),
        ("a\nb", "a\\u000ab"),
        ("a\\u000ab", "a\\\\u000ab"),  # a literal backslash cannot pass for an escape
        ("\u202eevil", "\\u202eevil"),
        ("x\u2028y", "x\\u2028y"),
        ("lone\ud800", "lone\\ud800"),
        ("日本-é", "日本-é"),  # printable non-ASCII stays readable
    ],
)
def test_escape(text, shown):
    assert escape(text) == shown


def test_escape_truncates_with_a_marker():
    assert escape("x" * 300, 100) == "x" * 99 + "\u2026"
    assert len(escape("\n" * 50, 100)) == 100


@pytest.mark.parametrize(
    "client_id, ok", [("svc-a", True), ("a" * 255, True), ("a" * 256, False), ("", False), ("a\tb", False)]
)
def test_client_id_rule(client_id, ok):
    assert (client_id_problem(client_id) is None) is ok


def test_jti_digest_is_sha256_of_utf8_and_accepts_lone_surrogates():
    assert jti_digest("é") == hashlib.sha256("é".encode()).hexdigest()
    assert len(jti_digest("\ud800")) == 64 and jti_digest("\ud800") != jti_digest("\ud801")
