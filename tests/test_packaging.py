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


def wheel_venv(dists, tmp_path: Path) -> Path:
    """A fresh venv holding the built wheel (its dependencies come from this environment); its python."""
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
    return python


def test_the_wheel_installs_into_a_fresh_venv_and_imports_the_public_api(dists, tmp_path):
    python = wheel_venv(dists, tmp_path)
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


def test_a_fresh_project_following_the_install_guide_protects_a_view(dists, tmp_path):
    """The adoption trial: the wheel, ``startproject``, the install guide's settings (a file cache), its
    views and urls examples (extracted from the page), migrate, m2m_grant; then runserver answers a
    granted token 200 and no token 401, and a revocation made by another process is seen at once."""
    import json
    import os
    import socket
    import time
    import urllib.error
    import urllib.request

    from drf_m2m_auth.testing import FakeIssuer, JWKSServer
    from tests.doc_examples import examples

    python = wheel_venv(dists, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    (views,) = [e for e in examples() if e.mode == "views"]
    (urls,) = [e for e in examples() if e.mode == "urls" and e.path.name == "install.rst"]

    def manage(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(python), "manage.py", *args], cwd=site, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    with JWKSServer(FakeIssuer(audience="https://api.example.com")) as server:
        subprocess.run(
            [str(python), "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env, check=True, timeout=60
        )
        site = tmp_path / "mysite"
        settings = {
            "ISSUER": server.fake.issuer,  # found by discovery, as with a real issuer
            "AUDIENCE": "https://api.example.com",
        }
        cache = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path / "c")}
        with (site / "mysite" / "settings.py").open("a") as f:
            f.write(f'\nINSTALLED_APPS += ["rest_framework", "drf_m2m_auth", "orders"]\nDRF_M2M_AUTH = {settings!r}\n')
            f.write(f'CACHES = {{"default": {cache!r}}}\n')
        app = site / "orders"
        app.mkdir()
        (app / "__init__.py").write_text("")
        (app / "models.py").write_text(
            "from django.db import models\n\n\nclass Order(models.Model):\n    item = models.CharField(max_length=50)\n"
        )
        (app / "serializers.py").write_text(
            "from rest_framework import serializers\n\nfrom .models import Order\n\n\n"
            "class OrderSerializer(serializers.ModelSerializer):\n"
            "    class Meta:\n        model = Order\n        fields = ['id', 'item']\n"
        )
        (app / "views.py").write_text(views.code)
        (site / "mysite" / "urls.py").write_text(urls.code)
        manage("makemigrations", "orders")
        manage("migrate")
        manage("m2m_grant", "--create", "--name", "Service A", "svc-a", "orders")
        assert "ok" in manage("m2m_jwks", "--check").stdout

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=site,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def get(token: str | None) -> int:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/orders/")
                if token:
                    request.add_header("Authorization", f"Bearer {token}")
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
                        return response.status
                except urllib.error.HTTPError as exc:
                    return exc.code

            deadline = time.monotonic() + 30
            while True:
                try:
                    status = get(None)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "runserver did not start within 30 s"
                    time.sleep(0.2)
            token = server.fake.token(scopes=["read:orders"], client_id="svc-a")
            assert status == 401
            assert get(token) == 200
            revoked = manage("m2m_revoke", "--client", "svc-a", "--json").stdout
            assert json.loads(revoked)["announced"] is True
            deadline = time.monotonic() + 5  # REVOCATION_CHECK_INTERVAL is 1 s
            while get(token) != 401:
                assert time.monotonic() < deadline, "the server still accepts a revoked token after 5 s"
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
