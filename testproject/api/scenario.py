"""The demo's cast: one issuer, three APIs, service-a and what it may do. Shared by demo and tests."""

from __future__ import annotations

SERVICE_B_AUDIENCE = "https://service-b.example"
REPORTS_AUDIENCE = "https://reports.example"  # another API service-a may call, not service-b
BILLING_AUDIENCE = "https://billing.example"  # an API service-a has no client grant for
SERVICE_A = "service-a"  # service-a's client id at the issuer
READ, WRITE = "read:data", "write:data"
RESOURCE = "data"  # service-b's resource_name for /data/ (service-c has a resource "data" too)
REPORTS = "reports"  # service-c's resource_name for /reports/
READ_REPORTS = "read:reports"


def seed(secret: str, *, token_lifetime: int = 3600) -> dict:
    """The issuer's and service-b's initial records for the scenario."""
    return {
        "issuer": {
            "apis": [
                {
                    "identifier": SERVICE_B_AUDIENCE,
                    "name": "service-b",
                    "scopes": [READ, WRITE],
                    "token_lifetime": token_lifetime,
                },
                {"identifier": REPORTS_AUDIENCE, "name": "reports", "scopes": [READ_REPORTS]},
                {"identifier": BILLING_AUDIENCE, "name": "billing", "scopes": ["read:invoices"]},
            ],
            "clients": [
                {
                    "client_id": SERVICE_A,
                    "name": "service-a",
                    "secret": secret,
                    "grants": {SERVICE_B_AUDIENCE: [READ], REPORTS_AUDIENCE: [READ_REPORTS]},
                },
            ],
        },
        "service_b": {
            "clients": [{"client_id": SERVICE_A, "name": "service-a", "resources": [RESOURCE]}],
            "records": [{"name": "temperature", "value": "21.5"}, {"name": "humidity", "value": "40%"}],
        },
    }


def fleet_seed(secret: str, *, token_lifetime: int = 3600) -> dict:
    """The demo's fleet: service-b and service-c share drf_m2m_auth's tables, and the control plane
    (one place) registers service-a and grants it resources per API: "data" on service-b's API,
    "reports" on service-c's. Service-b seeds only its own records."""
    spec = seed(secret, token_lifetime=token_lifetime)
    spec["service_b"].pop("clients")
    spec["control_plane"] = {
        "clients": [
            {
                "client_id": SERVICE_A,
                "name": "service-a",
                "grants": {SERVICE_B_AUDIENCE: [RESOURCE], REPORTS_AUDIENCE: [REPORTS]},
            }
        ]
    }
    return spec
