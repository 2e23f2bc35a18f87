"""The demo's cast: one issuer, three APIs, service-a and what it may do. Shared by demo and tests."""

from __future__ import annotations

SERVICE_B_AUDIENCE = "https://service-b.example"
REPORTS_AUDIENCE = "https://reports.example"  # another API service-a may call, not service-b
BILLING_AUDIENCE = "https://billing.example"  # an API service-a has no client grant for
SERVICE_A = "service-a"  # service-a's client id at the issuer
READ, WRITE = "read:data", "write:data"
RESOURCE = "data"  # service-b's resource_name for /data/


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
                {"identifier": REPORTS_AUDIENCE, "name": "reports", "scopes": ["read:reports"]},
                {"identifier": BILLING_AUDIENCE, "name": "billing", "scopes": ["read:invoices"]},
            ],
            "clients": [
                {
                    "client_id": SERVICE_A,
                    "name": "service-a",
                    "secret": secret,
                    "grants": {SERVICE_B_AUDIENCE: [READ], REPORTS_AUDIENCE: ["read:reports"]},
                },
            ],
        },
        "service_b": {
            "clients": [{"client_id": SERVICE_A, "name": "service-a", "resources": [RESOURCE]}],
            "records": [{"name": "temperature", "value": "21.5"}, {"name": "humidity", "value": "40%"}],
        },
    }
