"""The documentation site: the settings reference is generated from the settings table, every check
id and reason code in the source is documented, and every README link lands on a page that exists."""

from __future__ import annotations

import configparser
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drf_m2m_auth import conf

pytest.importorskip("sphinx")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.rst").read_text()
sys.path.insert(0, str(DOCS / "_ext"))
import m2m_docs  # noqa: E402


@dataclass
class Setting:
    """The shape of an entry of ``conf.SETTINGS`` as the extension reads it (duck-typed)."""

    default: Any
    doc: str


def test_the_settings_table_renders_each_entry_with_its_default_and_doc():
    table = {
        "AUDIENCE": Setting(None, "Your API's identifier; a string or a list."),
        "ALGORITHMS": Setting(["RS256"], "Allowed signing algorithms.\n\nSee :rfc:`7518#section-3.1`."),
        "LEEWAY": Setting(0, "Seconds of clock skew."),
    }
    text = "\n".join(m2m_docs.render_table(table))
    assert text.index("``AUDIENCE``") < text.index("``ALGORITHMS``") < text.index("``LEEWAY``")
    assert '.. _setting-ALGORITHMS:\n\n``ALGORITHMS``\n    Default: ``["RS256"]``.\n\n    Allowed signing' in text
    assert "    See :rfc:`7518#section-3.1`." in text
    assert "Default: ``None``." in text and "Default: ``0``." in text


def test_a_setting_without_doc_fails_the_build():
    with pytest.raises(ValueError, match="LEEWAY"):
        m2m_docs.render_table({"LEEWAY": Setting(0, "  ")})


def test_the_directive_reads_conf_settings_when_the_table_exists(monkeypatch):
    monkeypatch.setattr(conf, "SETTINGS", {"REALM": Setting("api", "The realm.")}, raising=False)
    lines, problems = m2m_docs.settings_source()
    assert problems == []
    assert "``REALM``" in lines and '    Default: ``"api"``.' in lines


def test_the_reference_documents_every_setting_of_the_real_table():
    lines, problems = m2m_docs.settings_source()
    assert problems == []
    documented = {line[2:-2] for line in lines if re.fullmatch(r"``[A-Z0-9_]+``", line)}
    assert documented == set(conf.SETTINGS)


def test_every_system_check_id_in_the_source_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "drf_m2m_auth").rglob("*.py"))
    ids = set(re.findall(r"drf_m2m_auth\.([EW]\d{3})", source)) | {row.check_id for row in conf.SETTINGS.values()}
    page = (DOCS / "ref" / "checks.rst").read_text()
    documented = set(re.findall(r"``([EW]\d{3})``", page))
    assert ids, "no check ids found in the source"
    assert ids <= documented, f"undocumented check ids: {sorted(ids - documented)}"
    assert documented <= ids, f"documented ids the code never emits: {sorted(documented - ids)}"


def test_reason_codes_are_read_from_the_source_with_their_descriptions():
    codes = m2m_docs.reason_codes(ROOT / "drf_m2m_auth")
    for code in ("expired", "bad_audience", "unknown_kid", "client_inactive", "dpop_replayed", "keys_unavailable"):
        assert code in codes, code
    assert ("drf_m2m_auth.token_rules", "The token has expired.") in codes["expired"]
    assert "ttl" not in codes  # jwks' refresh reasons are not rejections
    rows = "\n".join(m2m_docs.render_reasons(codes))
    assert "   * - .. _reason-expired:\n\n       ``expired``\n     - The token has expired." in rows


DOCS_URL = "https://drf-m2m-auth.readthedocs.io/en/latest/"


def test_the_docs_url_is_the_one_in_setup_cfg():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    urls = dict(
        line.split(" = ", 1) for line in setup["metadata"]["project_urls"].strip().splitlines() if " = " in line
    )
    assert urls["Documentation"] == DOCS_URL


def readme_links() -> list[str]:
    """Every link target in the README: `text <target>`_ references and bare URLs."""
    found = re.findall(r"`[^`<]*<([^>]+)>`_|(https?://[^\s`<>]+)", README)
    return [named or bare.rstrip(".,)") for named, bare in found]


def test_the_readme_has_no_relative_links():
    links = readme_links()
    assert len(links) >= 10
    relative = [link for link in links if not link.startswith("https://")]
    assert relative == [], "relative links are dead on PyPI"


def test_every_readme_docs_link_lands_on_an_existing_page():
    pages = [link for link in readme_links() if link.startswith(DOCS_URL)]
    assert len(pages) >= 10
    for link in pages:
        path = link[len(DOCS_URL) :].split("#")[0]
        if path in ("", "index.html"):
            path = "index.html"
        assert path.endswith(".html"), link
        assert (DOCS / path.replace(".html", ".rst")).is_file(), f"{link}: no docs/{path[:-5]}.rst"


def test_the_readme_is_a_landing_page():
    assert 100 <= len(README.splitlines()) <= 200
    assert "Default: ``" not in README  # the settings reference lives in the docs


def toctree_entries() -> set[str]:
    index = (DOCS / "index.rst").read_text()
    return set(re.findall(r"^   ((?:guide|ref|dev)/[\w-]+|changelog)$", index, re.M))


def test_every_page_is_in_the_table_of_contents():
    pages = {
        str(p.relative_to(DOCS).with_suffix(""))
        for p in DOCS.rglob("*.rst")
        if not p.name.startswith("_") and "_build" not in p.parts
    }
    assert pages - {"index"} == toctree_entries()
