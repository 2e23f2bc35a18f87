"""jose.json_object calls the JSON decoder's scanner directly (a hot path): it must accept and refuse
exactly what strict ``json`` with duplicate-refusing objects does, for JWS headers and payloads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drf_m2m_auth import jose


def reference(data: bytes):
    """The plain stdlib rules: strict UTF-8, no NaN/Infinity, no duplicate names, an object."""

    def pairs(items):
        obj = dict(items)
        if len(obj) != len(items):
            raise ValueError("duplicate")
        return obj

    def constant(name):
        raise ValueError(name)

    value = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=constant).decode(data.decode("utf-8"))
    if type(value) is not dict:
        raise ValueError("not an object")
    return value


def outcome(fn, data: bytes):
    try:
        return ("ok", fn(data))
    except (ValueError, RecursionError):
        return ("refused", None)


CASES = [
    b'{"a":1}',
    b'{"a":1} ',
    b'{"a":1}\n\t\r ',
    b' {"a":1}',
    b'\n{"a":1}\n',
    b'{"a":1}x',
    b'{"a":1} x',
    b'{"a":1}{}',
    b'{"a":1,"a":2}',
    b'{"a":{"b":1,"b":1}}',
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":-Infinity}',
    b'{"a":1',
    b"{",
    b"{}",
    b"[]",
    b'"x"',
    b"1",
    b"",
    b" ",
    b"{'a':1}",
    b'{"a":1,}',
    b'{"a":1}\x00',
    b'{"a":1}\xc2\xa0',
    b'{"\xc3\xa9":"\xe2\x82\xac"}',
    b'{"a":"\\ud800"}',
    b"\xef\xbb\xbf{}",
    b'{"a":1}\x0b',
    b'{"a":1}\x0c',
    b"{" * 5000 + b"}" * 5000,
]


@pytest.mark.parametrize("data", CASES, ids=[repr(c[:24]) for c in CASES])
def test_json_object_agrees_with_the_stdlib_rules(data):
    assert outcome(jose.json_object, data) == outcome(reference, data)


def test_invalid_utf8_is_refused():
    with pytest.raises(UnicodeDecodeError):
        jose.json_object(b'{"a":"\xff"}')


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, before=st.sampled_from(["", " ", "\n", "\t "]), after=st.text(max_size=3))
def test_any_document_agrees_with_the_stdlib_rules(value, before, after):
    data = (before + json.dumps(value) + after).encode("utf-8", "surrogatepass")
    assert outcome(jose.json_object, data) == outcome(reference, data)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet='{}[]":,ab1 \n-.eE', max_size=30))
def test_any_short_text_agrees_with_the_stdlib_rules(text):
    data = text.encode()
    assert outcome(jose.json_object, data) == outcome(reference, data)
