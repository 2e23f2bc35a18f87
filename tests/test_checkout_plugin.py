"""A checkout that is not pip-installed still finds the m2m_issuer fixture (the top-level conftest)."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """
import drf_m2m_auth


def test_uses_the_fixture(m2m_issuer):
    assert drf_m2m_auth.__file__.startswith({root!r}), drf_m2m_auth.__file__
    assert m2m_issuer.token()
"""


def run_checkout(tmp_path, with_conftest):
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("drf_m2m_auth", "testproject"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", copy)
    if with_conftest:
        shutil.copy(ROOT / "conftest.py", copy)
    (copy / "tests").mkdir()
    (copy / "tests" / "test_sample.py").write_text(SAMPLE.format(root=str(copy)))
    # -S: no site module, so no .pth file runs and the editable install of this package is not on
    # sys.path; the third-party packages are reached through PYTHONPATH. -p no:drf_m2m_auth blocks
    # the entry point that an installed copy would register (its metadata is still on that path).
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-S", "-m", "pytest", "-q", "-p", "no:drf_m2m_auth", "-p", "no:cacheprovider", "tests"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_a_checkout_finds_the_fixtures_through_the_top_level_conftest(tmp_path):
    done = run_checkout(tmp_path, with_conftest=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.slow
def test_without_it_the_fixture_is_not_found(tmp_path):
    done = run_checkout(tmp_path, with_conftest=False)
    assert done.returncode != 0 and "fixture 'm2m_issuer' not found" in done.stdout, done.stdout + done.stderr
