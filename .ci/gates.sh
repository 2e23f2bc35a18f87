#!/usr/bin/env bash
# Quality gates: lint, format, types, migrations, docs markup, the Sphinx site, packaging
# (check-manifest, build + twine), the GitHub workflows' schema, CI's own script checks.
# The test suites (including the -W error run) are CI's other step (.ci/run, tox -e warnings).
#
# Usage: .ci/gates.sh [PYTHON]     PYTHON defaults to .venv/bin/python, else python3.
# It installs the tools it needs into that interpreter's environment. Every gate runs even after
# one fails, so one CI run shows everything; the exit status is non-zero if any gate failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${1:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi

# Absolute, since the build gate runs from a temporary copy of the tree.
PY=$(command -v "$PY" 2>/dev/null || echo "$PY")
case "$PY" in /*) ;; *) PY="$PWD/$PY" ;; esac

echo "gates: installing tools into $("$PY" -c 'import sys; print(sys.prefix)')"
if ! "$PY" -c "import drf_m2m_auth, drf_spectacular" 2>/dev/null; then
    "$PY" -m pip install -q -e '.[test]' || { echo "gates: cannot install the package"; exit 2; }
fi
"$PY" -m pip install -q ruff mypy django-stubs djangorestframework-stubs types-requests build twine docutils \
    sphinx furo check-manifest check-jsonschema \
    || { echo "gates: cannot install the tools"; exit 2; }

failed=()
gate() {
    local name=$1; shift
    echo "::group::gate: $name"
    echo "+ $*"
    if "$@"; then
        echo "gate $name: ok"
    else
        echo "gate $name: FAILED"
        failed+=("$name")
    fi
    echo "::endgroup::"
}

SRC=(drf_m2m_auth tests testproject benchmarks docs .ci conftest.py)

gate ruff-check  "$PY" -m ruff check "${SRC[@]}"
gate ruff-format "$PY" -m ruff format --check "${SRC[@]}"
gate mypy        "$PY" -m mypy                      # configuration: setup.cfg [mypy]
gate migrations  "$PY" testproject/manage.py makemigrations --check --dry-run
# CI's own scripts: the README's two commands are what .ci/run runs (not part of the library's suite).
gate ci-scripts "$PY" -m pytest -q -p no:cacheprovider .ci/test_readme_commands.py

# Every .rst we ship or link from the README must render: warnings are errors, as on PyPI.
check_rst() {
    "$PY" - "$@" <<'PYEOF'
import io
import sys

import docutils.core

bad = 0
for path in sys.argv[1:]:
    stream = io.StringIO()
    with open(path, encoding="utf-8") as f:
        docutils.core.publish_string(f.read(), writer_name="null", settings_overrides={
            "warning_stream": stream, "report_level": 2, "halt_level": 5, "file_insertion_enabled": False})
    if stream.getvalue():
        bad += 1
        print(f"{path}:\n{stream.getvalue()}")
sys.exit(1 if bad else 0)
PYEOF
}
gate docs check_rst README.rst CHANGELOG.rst

# The documentation site: nitpicky (every internal reference must resolve), warnings are errors.
# External links are not checked: no network here.
sphinx_site() {
    local out status
    out=$(mktemp -d)
    "$PY" -m sphinx -n -W --keep-going -q -b html docs "$out"
    status=$?
    rm -rf "$out"
    return $status
}
gate sphinx sphinx_site

# The sdist holds every tracked file but those setup.cfg [check-manifest] ignores.
gate check-manifest "$PY" -m check_manifest

# The GitHub workflows against the workflow schema vendored in check-jsonschema (no network).
gate workflows "$PY" -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# Build sdist and wheel from a copy of the working tree (so nothing is written into the checkout),
# then let twine check the metadata and that the README renders on PyPI.
build_and_check() {
    local tmp status=0
    tmp=$(mktemp -d)
    git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$tmp" || status=1
    if [ $status = 0 ]; then
        (cd "$tmp" && "$PY" -m build --outdir "$tmp/dist" . >"$tmp/build.log" 2>&1) \
            || { tail -30 "$tmp/build.log"; status=1; }
    fi
    [ $status = 0 ] && { "$PY" -m twine check --strict "$tmp"/dist/* || status=1; }
    rm -rf "$tmp"
    return $status
}
gate build build_and_check

if [ ${#failed[@]} -gt 0 ]; then
    echo "gates FAILED: ${failed[*]}"
    exit 1
fi
echo "gates: all passed"
