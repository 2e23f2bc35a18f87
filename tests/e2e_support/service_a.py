"""service-a as its own process: get a token with drf_m2m_auth.client, make one call, print JSON.

Usage: python service_a.py TOKEN_URL CLIENT_ID AUDIENCE METHOD URL [SCOPE]; secret in SERVICE_A_SECRET.
Prints {"token_error": null | {status, error, type}, "status", "www_authenticate", "body", "kid"}.
Django is never imported: the calling side must not need it.
"""

import base64
import json
import os
import sys

import requests

from drf_m2m_auth.client import ClientCredentials, TokenRequestError


def main(token_url, client_id, audience, method, url, scope=None):
    creds = ClientCredentials(token_url, client_id, os.environ["SERVICE_A_SECRET"], audience, scope=scope or None)
    result = {"token_error": None, "status": None, "www_authenticate": None, "body": None, "kid": None,
              "django_imported": False}
    try:
        token = creds.token()
    except TokenRequestError as exc:
        result["token_error"] = {"status": exc.status, "error": exc.error, "type": type(exc).__name__}
    else:
        header = token.split(".")[0]
        result["kid"] = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
        body = {"name": "written-by-" + client_id, "value": "1"} if method == "POST" else None
        response = requests.request(method, url, json=body, auth=creds.auth, timeout=10)
        result["status"] = response.status_code
        result["www_authenticate"] = response.headers.get("WWW-Authenticate")
        try:
            result["body"] = response.json()
        except ValueError:
            result["body"] = response.text[:500]
    result["django_imported"] = "django" in sys.modules
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
