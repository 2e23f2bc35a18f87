"""Helpers for the end-to-end tests: the issuer and service-b as processes, service-a as another."""
