"""Shared fixtures: every test starts with fresh drf_m2m_auth state and an empty default cache."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_m2m_state():
    from django.core.cache import caches

    from drf_m2m_auth.conf import reset_state

    for cache in caches.all():
        cache.clear()
    reset_state()
    yield
    reset_state()
