"""service-a as its own process: get tokens with drf_m2m_auth.client, make calls, print JSON.

Usage: python service_a.py TOKEN_URL DATA_URL JOBS_JSON, where JOBS_JSON is a list of
``{"client_id", "secret", "audience", "method", "scope"}``. Prints a list with, for each job,
``{"token_error": null | {status, error, type}, "status", "www_authenticate", "body", "kid"}``
and whether Django was imported (it must not be: the calling side does not need it).
"""

import base64
import json
import sys

import requests

from drf_m2m_auth.client import ClientCredentials, TokenRequestError


def run(token_url, data_url, job):
    creds = ClientCredentials(
        token_url, job["client_id"], job["secret"], job["audience"], scope=job.get("scope") or None
    )
    result = {"token_error": None, "status": None, "www_authenticate": None, "body": None, "kid": None}
    try:
        token = creds.token()
    except TokenRequestError as exc:
        result["token_error"] = {"status": exc.status, "error": exc.error, "type": type(exc).__name__}
        return result
    header = token.split(".")[0]
    result["kid"] = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    method = job.get("method", "GET")
    body = {"name": "written-by-" + job["client_id"], "value": "1"} if method == "POST" else None
    response = requests.request(method, data_url, json=body, auth=creds.auth, timeout=10)
    result["status"] = response.status_code
    result["www_authenticate"] = response.headers.get("WWW-Authenticate")
    try:
        result["body"] = response.json()
    except ValueError:
        result["body"] = response.text[:500]
    return result


def main(token_url, data_url, jobs):
    results = [run(token_url, data_url, job) for job in json.loads(jobs)]
    print(json.dumps({"results": results, "django_imported": "django" in sys.modules}))


if __name__ == "__main__":
    main(*sys.argv[1:])
