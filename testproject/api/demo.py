"""The demo's scenario: service-a (this process) calls service-b and service-c with tokens from the local issuer.

Each step states what it does, shows what came back and why, and records PASS or FAIL against the
expected outcome. The issuer, service-b and service-c are separate processes on 127.0.0.1 (see
processes.py); service-b and service-c form a fleet with a control plane (see demo_fleet.py).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path

import requests

from drf_m2m_auth.client import AccessDenied, ClientCredentials
from drf_m2m_auth.dpop_key import DPoPKey

from . import scenario as sc
from .demo_fleet import FleetSteps
from .narration import Narrator, compact, decode_segment
from .processes import Service

REVOCATION_WAIT = 1.2  # > REVOCATION_CHECK_INTERVAL (1 s): the longest a worker may take to notice
STATUS_LIST_SLACK = 3.0  # beyond the list's ttl: service-b's fetch and this process's polling


def short(kid: str) -> str:
    return kid[:8] + "…" if len(kid) > 9 else kid


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Demo(FleetSteps):
    revocation_wait = REVOCATION_WAIT

    def __init__(self, workdir: Path, narrator: Narrator):
        self.n = narrator
        self.secret = secrets.token_urlsafe(24)
        self.issuer = Service("issuer", workdir, name="issuer")
        self.issuer_url = f"http://127.0.0.1:{self.issuer.port}/issuer/"
        common = {"M2M_ISSUER": self.issuer_url, "M2M_AUDIENCE": sc.SERVICE_B_AUDIENCE}
        self.issuer.extra_env.update(common)
        self.build_fleet(workdir, common)  # service-b, service-c, the control plane
        self.token_url = self.issuer_url + "oauth/token"
        self.data_url = self.service_b.url + "data/"
        self.seed = Path(workdir) / "seed.json"
        self.seed.write_text(json.dumps(sc.fleet_seed(self.secret)))
        self.first_token: str | None = None
        self.issuer_ops = self.control_plane_ops = None

    # -- plumbing ---------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        self.start_fleet([self.issuer, self.service_b, self.service_c], seed=self.seed, timeout=timeout)
        # The issuer's operator shell, warming up while the first steps play: the commands of
        # steps 5a and 6 then run without waiting for a new Django process.
        self.issuer_ops = self.issuer.console()

    def stop(self) -> None:
        for console in (self.issuer_ops, self.control_plane_ops):
            if console is not None:
                console.close()
        for service in (self.service_c, self.service_b, self.issuer):
            service.stop()

    def credentials(self, audience: str) -> ClientCredentials:
        return ClientCredentials(self.token_url, sc.SERVICE_A, self.secret, audience)

    def get(self, token: str) -> requests.Response:
        return requests.get(self.data_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def show_response(self, response: requests.Response) -> None:
        self.n.field("answer", f"{response.status_code} {response.reason}")
        challenge = response.headers.get("WWW-Authenticate")
        if challenge:
            self.n.field("header", "WWW-Authenticate: " + challenge)
        try:
            self.n.field("body", compact(response.json()))
        except ValueError:
            self.n.field("body", compact(response.text))

    def expect_rejection(self, step_id, response, status, error, what) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        passed = response.status_code == status and f'error="{error}"' in challenge
        self.n.outcome(
            step_id, passed, what if passed else f"expected {status} {error}, got {response.status_code} {challenge!r}"
        )

    # -- the story ---------------------------------------------------------------------------

    def run(self) -> None:
        n = self.n
        n.title("drf-m2m-auth demo: machine-to-machine calls with OAuth 2.0 client_credentials")
        n.field("issuer", f"{self.issuer_url}  (local stand-in for Auth0: never use it in production)")
        n.field("service-b", f"{self.service_b.url}  (DRF API: M2MJWTAuthentication, HasScopes, HasResourceGrant)")
        n.field("service-c", f"{self.service_c.url}  (the reports API: {sc.REPORTS_AUDIENCE}, the same checks)")
        n.field("fleet", "service-b and service-c share drf_m2m_auth's tables (a SQLite file, M2MRouter) and a cache")
        n.field("control", "the control plane, an operator shell on that database, granted service-a its resources:")
        for command in self.granted:
            n.field("", command)
        n.field("service-a", "this process, using drf_m2m_auth.client.ClientCredentials")
        steps = [
            ("1", "service-a asks the issuer for a token for service-b", self.step_token),
            ("2", "service-a calls GET /data/ on service-b with it", self.step_read),
            ("3", "service-a calls POST /data/, which needs write:data, with its read-only token", self.step_write),
            ("4a", "service-a asks for a token for an API it has no grant for", self.step_other_audience),
            ("4b", "service-a presents a token meant for another API to service-b", self.step_wrong_audience),
            ("4c", "service-a calls service-c, where a grant on service-b's API is no use", self.step_grant_per_api),
            ("5a", "an expired token", self.step_expired),
            ("5b", "one revocation at the control plane: service-b and service-c refuse", self.step_fleet_revoked),
            ("6", "the issuer rotates its signing key", self.step_rotation),
            ("7", "a stolen DPoP-bound token, replayed without its key", self.step_dpop),
            ("8", "the issuer revokes the token service-a is using (Token Status List)", self.step_issuer_revokes),
        ]
        for step_id, title, run in steps:
            n.step(step_id, title)
            started = time.monotonic()
            try:
                run(step_id)
            except Exception as exc:  # a broken step is a failed step; the others still run
                n.outcome(step_id, False, f"{type(exc).__name__}: {exc}")
            n.line("    " + n.paint(f"({time.monotonic() - started:.1f} s)", "dim"))

    def step_token(self, step_id):
        n = self.n
        n.field("request", f"POST {self.token_url}")
        n.field("", f"grant_type=client_credentials client_id={sc.SERVICE_A} audience={sc.SERVICE_B_AUDIENCE}")
        token = self.credentials(sc.SERVICE_B_AUDIENCE).token()
        self.first_token = token
        header, claims = (decode_segment(part) for part in token.split(".")[:2])
        n.field("token", compact(token, 40) + f"  ({len(token)} bytes, decoded for display below)")
        n.field("header", json.dumps(header))
        for name in ("iss", "aud", "sub", "client_id", "scope", "jti"):
            n.field(name, str(claims.get(name)))
        n.field("iat", f"{claims['iat']}  ({_when(claims['iat'])})")
        n.field("exp", f"{claims['exp']}  ({_when(claims['exp'])}, lifetime {claims['exp'] - claims['iat']} s)")
        n.why(
            "the issuer holds a client grant for service-a on this API with scope read:data; no scope was "
            "asked for, so (as Auth0 does) it granted all of them. The token is an RFC 9068 at+jwt, signed "
            f"RS256 by the key with kid {short(header.get('kid', ''))}."
        )
        passed = (
            header.get("typ") == "at+jwt"
            and claims.get("aud") == sc.SERVICE_B_AUDIENCE
            and claims.get("sub") == sc.SERVICE_A + "@clients"
            and claims.get("scope") == sc.READ
            and claims.get("iss") == self.issuer_url
        )
        n.outcome(step_id, passed, "a signed access token for service-b with scope read:data")

    def step_read(self, step_id):
        response = requests.get(self.data_url, auth=self.credentials(sc.SERVICE_B_AUDIENCE).auth, timeout=10)
        self.n.field("request", f"GET {self.data_url}  Authorization: Bearer <token from step 1>")
        self.show_response(response)
        self.n.why(
            "service-b found the issuer's keys by OIDC discovery, checked the signature, iss, aud and exp; "
            "HasScopes found read:data in the token; HasResourceGrant found service-a's grant for the "
            "resource 'data' on service-b's API, which the control plane made in the fleet's database "
            "(read into memory once: no query per request)."
        )
        self.n.outcome(
            step_id,
            response.status_code == 200 and isinstance(response.json(), list),
            f"200 with {len(response.json()) if response.ok else 0} records",
        )

    def step_write(self, step_id):
        response = requests.post(
            self.data_url,
            json={"name": "pressure", "value": "1013 hPa"},
            timeout=10,
            headers={"Authorization": f"Bearer {self.first_token}"},
        )
        self.n.field("request", f'POST {self.data_url}  {{"name": "pressure", ...}}')
        self.show_response(response)
        self.n.why(
            "the token is genuine but grants read:data only; the viewset's required_scopes maps "
            "create to write:data, so service-b answers 403 insufficient_scope and names the scope "
            "needed (RFC 6750 3.1)."
        )
        ok = 'scope="write:data"' in response.headers.get("WWW-Authenticate", "")
        self.expect_rejection(step_id, response, 403, "insufficient_scope", "403 insufficient_scope, scope=write:data")
        if not ok:
            self.n.outcome(step_id, False, 'the challenge does not name scope="write:data"')

    def step_other_audience(self, step_id):
        self.n.field("request", f"POST {self.token_url}  audience={sc.BILLING_AUDIENCE}")
        try:
            self.credentials(sc.BILLING_AUDIENCE).token()
        except AccessDenied as exc:
            self.n.field("answer", f"{exc.status} {exc.error}")
            self.n.field("raised", f"drf_m2m_auth.client.AccessDenied: {exc}")
            self.n.why(
                "the API exists at the issuer but service-a has no client grant for it: like Auth0, the "
                "issuer refuses to mint the token at all."
            )
            self.n.outcome(
                step_id, exc.status == 403 and exc.error == "access_denied", "the issuer refused: 403 access_denied"
            )
        else:
            self.n.outcome(step_id, False, "expected the issuer to refuse, but it issued a token")

    def step_wrong_audience(self, step_id):
        token = self.credentials(sc.REPORTS_AUDIENCE).token()
        claims = decode_segment(token.split(".")[1])
        self.n.field("token", f"aud={claims['aud']}  scope={claims['scope']}  (a genuine token, for another API)")
        self.n.field("request", f"GET {self.data_url}  Authorization: Bearer <that token>")
        response = self.get(token)
        self.show_response(response)
        self.n.why(
            "the signature and issuer are fine, but service-b only accepts tokens whose aud is "
            f"{sc.SERVICE_B_AUDIENCE}: a token stolen from (or misdirected to) another API is useless here."
        )
        self.expect_rejection(step_id, response, 401, "invalid_token", "401 invalid_token (audience)")

    def step_expired(self, step_id):
        token = self.issuer_ops.run(
            "issuer_token", sc.SERVICE_A, sc.SERVICE_B_AUDIENCE, "--scope", sc.READ, "--expired"
        ).strip()
        claims = decode_segment(token.split(".")[1])
        self.n.field("token", f"signed by the issuer, exp {_when(claims['exp'])} (an hour ago)")
        response = self.get(token)
        self.show_response(response)
        self.n.why(
            "exp is in the past by more than LEEWAY (5 s of allowed clock skew): rejected before any "
            "scope or grant is looked at."
        )
        self.expect_rejection(step_id, response, 401, "invalid_token", "401 invalid_token (expired)")

    def step_rotation(self, step_id):
        jwks_url = self.issuer_url + ".well-known/jwks.json"
        kids_before = [key["kid"] for key in requests.get(jwks_url, timeout=10).json()["keys"]]
        old_kid = decode_segment(self.first_token.split(".")[0])["kid"]
        self.n.field(
            "jwks",
            "the issuer publishes "
            + ", ".join(f"{short(kid)} ({'signing' if kid == old_kid else 'next'})" for kid in kids_before),
        )
        said = self.issuer_ops.run("issuer_rotate_key").strip()
        for kid in kids_before:
            said = said.replace(kid, short(kid))
        self.n.field("operator", f"manage.py issuer_rotate_key  ->  {said}")
        pid = self.service_b.proc.pid
        token = self.credentials(sc.SERVICE_B_AUDIENCE).token()
        new_kid = decode_segment(token.split(".")[0])["kid"]
        self.n.field("token", f"service-a's next token is signed with kid {short(new_kid)}")
        response = self.get(token)
        self.show_response(response)
        self.n.why(
            "the issuer publishes its next key in the JWKS before it signs with it (as Auth0 does), so the "
            "JWKS service-b cached at step 2 already held it; an unknown kid would make service-b refetch "
            f"the JWKS (at most once per JWKS_REFRESH_COOLDOWN). service-b kept running (pid {pid})."
        )
        alive = self.service_b.proc.poll() is None and self.service_b.proc.pid == pid
        passed = response.status_code == 200 and new_kid != old_kid and new_kid in kids_before and alive
        self.n.outcome(
            step_id,
            passed,
            "200 with a token from the new key, no restart"
            if passed
            else f"expected 200 from a new pre-published key, got {response.status_code} (kid {new_kid})",
        )

    def step_dpop(self, step_id):
        n = self.n
        creds = ClientCredentials(self.token_url, sc.SERVICE_A, self.secret, sc.SERVICE_B_AUDIENCE, dpop=True)
        owner = requests.get(self.data_url, auth=creds.auth, timeout=10)
        token = creds.token()
        jkt = decode_segment(token.split(".")[1]).get("cnf", {}).get("jkt")
        n.field("token", f"token_type DPoP, cnf.jkt={jkt}  (the thumbprint of service-a's own key)")
        n.field(
            "service-a",
            f"GET {self.data_url}  Authorization: DPoP <token>  DPoP: <proof signed by its key>"
            f"  ->  {owner.status_code} {owner.reason}",
        )
        thief = DPoPKey()
        stolen = requests.get(
            self.data_url,
            timeout=10,
            headers={"Authorization": f"DPoP {token}", "DPoP": thief.proof("GET", self.data_url, access_token=token)},
        )
        as_bearer = self.get(token)
        n.field("thief", "the same token, with a proof the thief signed with its own key:")
        self.show_response(stolen)
        n.field("as Bearer", f"the same token as a plain bearer token  ->  {as_bearer.status_code} {as_bearer.reason}")
        n.why(
            "the token request carried a DPoP proof, so the issuer bound the token to service-a's key "
            "(cnf.jkt, RFC 9449). service-b wants a fresh proof from that key with every request (method, "
            "URL, token hash, a jti used once): whoever steals only the token can neither sign one nor "
            "downgrade it to Bearer."
        )
        self.expect_rejection(
            step_id, stolen, 401, "invalid_token", "200 for service-a, 401 invalid_token for the thief"
        )
        if owner.status_code != 200 or as_bearer.status_code != 401 or not jkt:
            n.outcome(
                step_id,
                False,
                f"expected a bound token accepted from service-a ({owner.status_code}) "
                f"and refused as Bearer ({as_bearer.status_code})",
            )

    def step_issuer_revokes(self, step_id):
        n = self.n
        creds = self.credentials(sc.SERVICE_B_AUDIENCE)
        token = creds.token()
        claims = decode_segment(token.split(".")[1])
        ref = (claims.get("status") or {}).get("status_list") or {}
        uri, idx = ref.get("uri"), ref.get("idx")
        listed = decode_segment(requests.get(uri, timeout=10).text.split(".")[1]) if uri else {}
        ttl = float(listed.get("ttl", 0))
        n.field("token", f"service-a's current token, jti {claims.get('jti')}: status idx {idx} in {uri}")
        n.field("list", f"the issuer's signed status list for it says: valid, look again within ttl {ttl:g} s")
        before = self.get(token)
        n.field("before", f"{before.status_code} {before.reason}")
        said = self.issuer_ops.run("issuer_token_status", token, "--revoke").strip()
        acted = time.monotonic()
        n.field("operator", f"manage.py issuer_token_status <token> --revoke  (at the issuer)  ->  {said}")
        deadline, polls = acted + ttl + STATUS_LIST_SLACK, 0
        response = self.get(token)
        while response.status_code == 200 and time.monotonic() < deadline:  # bounded by the list's ttl
            time.sleep(0.1)
            response, polls = self.get(token), polls + 1
        took = time.monotonic() - acted
        n.field("service-b", f"refused it {took:.1f} s after the issuer's action ({polls + 1} calls polling)")
        self.show_response(response)
        renewed = requests.get(self.data_url, auth=creds.auth, timeout=10)
        new_token = creds.token()
        n.field(
            "service-a",
            f"its client got that 401 invalid_token, fetched a new token (status idx "
            f"{(decode_segment(new_token.split('.')[1]).get('status') or {}).get('status_list', {}).get('idx')}) "
            f"and resent: {renewed.status_code} {renewed.reason}",
        )
        n.why(
            "the issuer gave the token a slot in its Token Status List (draft-ietf-oauth-status-list-20) "
            "and publishes the list signed with its keys. service-b verified the list once, keeps it "
            "in memory for its ttl (one fetch for every worker through the shared cache) and reads the "
            "token's bit on each request. After the issuer flipped that bit, service-b saw it at its "
            f"next refresh: within the ttl ({ttl:g} s), here in {took:.1f} s. Only that token is refused; "
            "service-a's next token is valid."
        )
        passed = (
            before.status_code == 200
            and took <= ttl + STATUS_LIST_SLACK
            and renewed.status_code == 200
            and new_token != token
        )
        self.expect_rejection(
            step_id, response, 401, "invalid_token", f"200 before, 401 invalid_token {took:.1f} s after, 200 renewed"
        )
        if not passed:
            n.outcome(
                step_id,
                False,
                f"expected 200 before ({before.status_code}), the 401 within {ttl:g} s ({took:.1f} s) and "
                f"200 with a renewed token ({renewed.status_code})",
            )
