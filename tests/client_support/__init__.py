"""Test helpers for tests/test_client.py: a local issuer + API, a cross-process cache."""
