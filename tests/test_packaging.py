"""The release artefacts: the wheel holds the package, py.typed and LICENSE only, installs into a fresh
virtualenv and imports its public API there; the sdist holds what its own test suite needs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import drf_m2m_auth

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def tracked_tree(dest: Path) -> Path:
    """A copy of the files git tracks (and new untracked ones), so nothing is written into the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist): the release is built from the repository")
    tree = tracked_tree(tmp_path_factory.mktemp("tree"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_version_is_in_the_file_names(dists):
    assert dists["wheel"].name == f"drf_m2m_auth-{drf_m2m_auth.__version__}-py3-none-any.whl"
    assert dists["sdist"].name == f"drf_m2m_auth-{drf_m2m_auth.__version__}.tar.gz"


def test_the_wheel_holds_the_package_py_typed_and_the_licence_only(dists):
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"drf_m2m_auth-{drf_m2m_auth.__version__}.dist-info/METADATA").decode()
    top = {name.split("/")[0] for name in names}
    assert top == {"drf_m2m_auth", f"drf_m2m_auth-{drf_m2m_auth.__version__}.dist-info"}, top
    assert "drf_m2m_auth/py.typed" in names
    assert "drf_m2m_auth/migrations/0001_initial.py" in names
    assert any(name.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in name for name in names), names
    assert not [name for name in names if "/tests/" in name or name.endswith((".pyc", ".sqlite3"))]
    assert "License-File: LICENSE" in metadata
    assert "Project-URL: Documentation, https://drf-m2m-auth.readthedocs.io/en/latest/" in metadata


def test_the_sdist_holds_what_its_tests_need(dists):
    prefix = f"drf_m2m_auth-{drf_m2m_auth.__version__}/"
    with tarfile.open(dists["sdist"]) as sdist:
        names = {name.removeprefix(prefix) for name in sdist.getnames()}
    for needed in (
        "LICENSE",
        "CHANGELOG.rst",
        "README.rst",
        "setup.cfg",
        "pyproject.toml",
        "docs/conf.py",
        "docs/index.rst",
        "tests/conftest.py",
        "testproject/manage.py",
        ".ci/readme_commands.py",
        "benchmarks/PERFORMANCE.rst",
    ):
        assert needed in names, needed
    assert not [name for name in names if name.endswith((".pyc", ".sqlite3")) or "/__pycache__" in name]


def test_the_wheel_installs_into_a_fresh_venv_and_imports_the_public_api(dists, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(dists["wheel"]),
        ],
        check=True,
        timeout=120,
    )
    # The dependencies come from this environment's site-packages, added after the venv's own: a .pth
    # file, whose own entries are not scanned for further .pth files, so this checkout's editable
    # install of drf_m2m_auth is not picked up.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = """
import sys
import drf_m2m_auth
from drf_m2m_auth import client, errors, principal, scopes, testing
assert drf_m2m_auth.__file__.startswith(sys.prefix), drf_m2m_auth.__file__
assert "django" not in sys.modules, "the pure core imported Django"
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_m2m_auth"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DRF_M2M_AUTH={"ISSUER": "https://issuer.example/", "AUDIENCE": "https://api.example"},
)
django.setup()
from drf_m2m_auth.authentication import M2MJWTAuthentication
from drf_m2m_auth.permissions import HasResourceGrant, HasScopes
from drf_m2m_auth.models import Client, ResourceGrant
from drf_m2m_auth.client import ClientCredentials
from drf_m2m_auth.testing import FakeIssuer
print(drf_m2m_auth.__version__)
"""
    done = subprocess.run([str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == drf_m2m_auth.__version__
