#!/usr/bin/env bash
# The Django 4.2 leg of CI: what proves the "Framework :: Django :: 4.2" classifier.
# A second virtualenv (Django 4.2 LTS, DRF < 3.17, the test extra) in a temporary directory, running
# the tests that need no real service (PostgreSQL, Redis, nginx and the browser run under Django 5.2
# in the README's test command) and not the version-independent packaging test. About 4 minutes on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=$(mktemp -d "${TMPDIR:-/tmp}/drf-m2m-auth-django42.XXXXXX")
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q -e '.[test]' 'Django>=4.2,<5.0' 'djangorestframework<3.17'
"$venv/bin/python" -c 'import django, rest_framework; print(f"ci: Django {django.get_version()}, DRF {rest_framework.VERSION}")'
"$venv/bin/python" -m pytest -q -p no:cacheprovider \
    --ignore=tests/realservices --ignore=tests/test_mtls_nginx.py --ignore=tests/test_packaging.py
