"""Every Python example of the README and the docs runs as written, extracted from the documents.

A block runs as it is; the settings it defines (``DRF_M2M_AUTH``, ``CACHES``, ``REST_FRAMEWORK``)
are then applied with ``override_settings`` and must pass the package's system checks. The install
guide's views block is served under ``/orders/`` (tests/doc_examples_app) and the testing guide's
tests run against it with the fixtures they name. A block may only be left out with an explicit
``.. doctest-skip: <reason>`` comment, and test_the_skipped_examples lists every one of them.
"""

from __future__ import annotations

import ast
import inspect

import pytest
from django.core.checks.registry import registry
from django.test import override_settings

from tests.doc_examples import ROOT, examples

EXAMPLES = examples()
APPLIED_SETTINGS = ("DRF_M2M_AUTH", "CACHES", "REST_FRAMEWORK", "SPECTACULAR_SETTINGS")

# What may be skipped, and why: adding a skip marker to the docs means adding it here too.
EXPECTED_SKIPS = {
    ("README.rst", "calls a real issuer and API over the network with real credentials"),
    ("docs/guide/auth0.rst", "calls a real issuer and API over the network with real credentials"),
    ("docs/guide/client.rst", "calls a real issuer and API over the network with real credentials"),
    ("docs/guide/fleet.rst", "needs the second database alias 'fleet'; testproject/fleet/base.py runs these settings"),
    ("docs/ref/signals.rst", "needs the third-party statsd package and a StatsD server"),
    ("docs/ref/signals.rst", 'needs the third-party prometheus_client package and an installed app "yourapp"'),
}


def by_mode(mode: str) -> list:
    return [pytest.param(example, id=example.id) for example in EXAMPLES if example.mode == mode]


def run_block(example) -> dict:
    namespace: dict = {"__name__": "doc_example"}
    exec(compile(example.code, example.id, "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def drf_m2m_auth_problems() -> list[str]:
    checks = [c for c in registry.get_checks() if c.__module__.startswith("drf_m2m_auth")]
    assert checks, "drf_m2m_auth registers no system checks"
    return [f"{m.id}: {m.msg}" for check in checks for m in check(app_configs=None) if m.is_serious()]


def test_the_documents_hold_examples():
    assert len(EXAMPLES) >= 20
    assert {e.mode for e in EXAMPLES} == {"run", "views", "urls", "tests", "skip"}


@pytest.mark.parametrize("example", by_mode("run"))
def test_example_runs_and_its_settings_pass_the_checks(example):
    namespace = run_block(example)
    if "INSTALLED_APPS" in namespace:
        assert {"rest_framework", "drf_m2m_auth"} <= set(namespace["INSTALLED_APPS"])
    applied = {name: namespace[name] for name in APPLIED_SETTINGS if name in namespace}
    if "DRF_M2M_AUTH" in applied:
        with override_settings(**applied):
            assert drf_m2m_auth_problems() == []
    if "LOGGING" in namespace:
        import logging.config

        # validated by the stdlib's own configurator, without touching the test run's logging
        logging.config.DictConfigurator(namespace["LOGGING"])
        assert namespace["LOGGING"]["version"] == 1


def test_the_views_example_is_served_under_orders(client, db):
    from tests.doc_examples_app import views

    assert views.OrderViewSet.resource_name == "orders"
    with override_settings(ROOT_URLCONF="tests.doc_examples_app.urls"):
        assert client.get("/orders/").status_code == 401


@pytest.mark.parametrize("example", by_mode("urls"))
def test_the_urls_example_routes_the_views_example(example, client, db, monkeypatch):
    """The install guide's urls.py, as written: its ``orders.views`` is the views example."""
    import sys
    import types

    from tests import doc_examples_app
    from tests.doc_examples_app import views

    monkeypatch.setitem(sys.modules, "orders", doc_examples_app)
    monkeypatch.setitem(sys.modules, "orders.views", views)
    urlconf = types.ModuleType("doc_example_urls")
    urlconf.__dict__.update(run_block(example))
    with override_settings(ROOT_URLCONF=urlconf):
        response = client.get("/api/orders/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def doc_tests() -> list:
    params = []
    for example in EXAMPLES:
        if example.mode == "tests":
            names = [n.name for n in ast.parse(example.code).body if isinstance(n, ast.FunctionDef)]
            params += [pytest.param(example, name, id=f"{example.id}::{name}") for name in names if name[:5] == "test_"]
    return params


@pytest.mark.django_db
@pytest.mark.parametrize(("example", "name"), doc_tests())
def test_the_testing_guide_tests_pass(example, name, request, settings):
    settings.ROOT_URLCONF = "tests.doc_examples_app.urls"
    function = run_block(example)[name]
    fixtures = {param: request.getfixturevalue(param) for param in inspect.signature(function).parameters}
    function(**fixtures)


def test_the_skipped_examples():
    skipped = {(str(e.path.relative_to(ROOT)), e.reason) for e in EXAMPLES if e.mode == "skip"}
    assert skipped == EXPECTED_SKIPS
    assert all(reason for _, reason in skipped)
