"""Sphinx configuration for the drf_m2m_auth documentation (furo theme, no network needed).

Build: ``sphinx-build -n -W --keep-going -b html docs docs/_build/html`` (the quality gates run
exactly this: nitpicky, so every internal reference must resolve; warnings are errors).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

# autodoc imports the package's Django glue: give it the test project's settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
import django  # noqa: E402

django.setup()

import drf_m2m_auth  # noqa: E402

project = "drf-m2m-auth"
author = "drf_m2m_auth contributors"
copyright = "2026, drf_m2m_auth contributors"  # noqa: A001
release = drf_m2m_auth.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "m2m_docs",
]

exclude_patterns = ["_build", "**/_*.rst"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "furo"
html_title = f"drf-m2m-auth {release}"

# Highlight blocks as written; never fail the build on a lexer guess.
highlight_language = "none"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "undoc-members": False}

# Nitpicky: every internal cross-reference must resolve. Names from other projects' docs cannot be
# resolved without intersphinx (which needs the network), so they are listed here instead.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(django|rest_framework|requests|cryptography|joserfc|authlib|datetime|collections|typing)\..*"),
    (r"py:.*", r"(Any|Callable|Iterable|Iterator|Mapping|Sequence|Self|Literal|Optional|Union)"),
    (r"py:class", r"(bytes|str|int|float|bool|dict|list|set|frozenset|tuple|object|type|None|Exception)"),
    (r"py:class", r"(optional|callable)"),
    (r"py:class", r"Credentials"),  # bearer_auth's structural Protocol for ClientCredentials
    (r"py:class", r"drf_m2m_auth\.sender\.SenderPolicy"),  # internal: authentication's DPoP/mTLS policy
]
