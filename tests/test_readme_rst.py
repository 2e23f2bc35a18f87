"""README.rst renders without warnings (what PyPI's renderer would choke on)."""

from pathlib import Path

import pytest

docutils_core = pytest.importorskip("docutils.core")


def test_readme_renders_cleanly():
    text = (Path(__file__).resolve().parent.parent / "README.rst").read_text()
    docutils_core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 2})
