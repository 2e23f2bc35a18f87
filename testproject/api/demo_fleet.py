"""The demo's fleet: service-c (the "reports" API) beside service-b, and the control plane.

service-b and service-c keep drf_m2m_auth's tables in one shared SQLite file (the ``fleet`` alias,
through ``drf_m2m_auth.routers.M2MRouter``) and watch one cache directory: the laptop version of a
fleet on PostgreSQL + Redis. The control plane is a warm ``operator_console`` on that database: it
migrates it, registers service-a and grants it resources for both APIs with ``m2m_grant --api``
(one place), and revokes.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import requests

from . import scenario as sc
from .narration import decode_segment
from .processes import Service

SERVICE_C_SETTINGS = "testproject.api.service_c_settings"


def grant_commands(spec: dict) -> list[list[str]]:
    """The control plane's ``m2m_grant`` commands for a scenario's ``control_plane`` part."""
    commands = []
    for client in spec["control_plane"]["clients"]:
        register = ["--create", "--name", client.get("name", client["client_id"])]
        for api, resources in client["grants"].items():
            commands.append(["m2m_grant", client["client_id"], *resources, "--api", api, *register])
            register = []
    return commands


class FleetSteps:
    """Mixed into demo.Demo: builds the fleet's processes and plays the steps that need service-c."""

    def build_fleet(self, workdir: Path, common: dict[str, str]) -> None:
        shared = {
            "TESTPROJECT_FLEET_SQLITE": str(Path(workdir) / "fleet.sqlite3"),
            "TESTPROJECT_CACHE_DIR": str(Path(workdir) / "fleet-cache"),
        }
        self.service_b = Service("api", workdir, name="service-b", env={**common, **shared})
        self.service_c = Service(
            "reports",
            workdir,
            name="service-c",
            env={**common, **shared, "M2M_AUDIENCE": sc.REPORTS_AUDIENCE},
            settings=SERVICE_C_SETTINGS,
            migrate=False,  # its own database holds nothing it uses: its grants are in the fleet's
        )
        self.control_plane = Service("controlplane", workdir, name="control-plane", env={**common, **shared})
        self.granted: list[str] = []  # the control plane's m2m_grant commands, as run
        self.reports_url = self.service_c.url + "reports/"
        self.figures_url = self.service_c.url + "data/"

    def start_fleet(self, servers: list[Service], seed: Path, timeout: float) -> None:
        """Start the servers; meanwhile the control plane migrates the fleet's database and seeds it."""
        self.control_plane_ops = None
        try:
            for server in servers:
                server.start(seed=seed)
            self.control_plane_ops = self.control_plane.console()
            # Only drf_m2m_auth's tables: the fleet's database holds nothing else.
            self.control_plane_ops.run("migrate", "drf_m2m_auth", "--database", "fleet", "-v0", timeout=timeout)
            for command in grant_commands(json.loads(Path(seed).read_text())):
                self.control_plane_ops.run(*command, timeout=timeout)
                self.granted.append("manage.py " + shlex.join(command))
            for server in servers:
                server.wait_ready(timeout)
        except BaseException:
            for server in servers:
                server.stop()
            if self.control_plane_ops is not None:
                self.control_plane_ops.close()
            raise

    def call(self, url: str, token: str) -> requests.Response:
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def reports_token(self) -> str:
        return self.credentials(sc.REPORTS_AUDIENCE).token()

    # -- steps ------------------------------------------------------------------------------

    def step_grant_per_api(self, step_id):
        n = self.n
        token = self.reports_token()
        claims = decode_segment(token.split(".")[1])
        n.field("token", f"aud={claims['aud']}  scope={claims['scope']}  (service-c's audience)")
        reports = self.call(self.reports_url, token)
        n.field("service-c", f"GET {self.reports_url}  ->  {reports.status_code} {reports.reason}")
        n.field("request", f"GET {self.figures_url}  Authorization: Bearer <that token>")
        response = self.call(self.figures_url, token)
        self.show_response(response)
        n.why(
            f"the control plane granted service-a 'data' on service-b's API ({sc.SERVICE_B_AUDIENCE}) and "
            f"'reports' on service-c's ({sc.REPORTS_AUDIENCE}). A grant belongs to one API: service-c reads "
            "only the grants for its own (DRF_M2M_AUTH['API'], by default its audience), so a resource of "
            "the same name on another API gives nothing here."
        )
        code = response.json().get("detail", "") if response.status_code == 403 else ""
        passed = reports.status_code == 200 and response.status_code == 403 and "no grant" in code
        n.outcome(
            step_id,
            passed,
            "200 for its 'reports' grant, 403 no grant for service-b's 'data'"
            if passed
            else f"expected 200 at /reports/ and 403 no grant at /data/, got {reports.status_code} and "
            f"{response.status_code} {response.text[:120]!r}",
        )

    def step_fleet_revoked(self, step_id):
        n = self.n
        reports_token = self.reports_token()
        before_b = self.get(self.first_token)
        before_c = self.call(self.reports_url, reports_token)
        n.field("before", f"service-b, the step-1 token: {before_b.status_code} {before_b.reason}")
        n.field("", f"service-c, service-a's token for it: {before_c.status_code} {before_c.reason}")
        said = self.control_plane_ops.run("m2m_revoke", "--client", sc.SERVICE_A)
        lines = [line.strip() for line in said.strip().splitlines()]
        said = " ".join(line if line.endswith((".", ":", ";")) else line + "." for line in lines if line)
        n.field("operator", f"manage.py m2m_revoke --client {sc.SERVICE_A}  (at the control plane)  ->  {said}")
        time.sleep(self.revocation_wait)
        after_b = self.get(self.first_token)
        n.field("service-b", "GET /data/ with the step-1 token:")
        self.show_response(after_b)
        after_c = self.call(self.reports_url, reports_token)
        n.field("service-c", "GET /reports/ with its token:")
        self.show_response(after_c)
        n.why(
            "service-b and service-c read drf_m2m_auth's tables from one fleet database (here one SQLite "
            "file, through M2MRouter) and watch one revocation signal in the shared cache (here one cache "
            "directory; Redis in production). The command set tokens_valid_after = now for service-a there, "
            "numbered the change and bumped the signal: each server noticed within REVOCATION_CHECK_INTERVAL "
            "(1 s) and rejects every token issued before that moment, at every API at once, with no database "
            "query per request. New tokens from the issuer are accepted again."
        )
        rejected = all(
            r.status_code == 401 and 'error="invalid_token"' in r.headers.get("WWW-Authenticate", "")
            for r in (after_b, after_c)
        )
        passed = before_b.status_code == 200 and before_c.status_code == 200 and rejected
        n.outcome(
            step_id,
            passed,
            "200 before, 401 invalid_token after, at service-b and service-c"
            if passed
            else f"expected 200 before ({before_b.status_code}, {before_c.status_code}) and 401 invalid_token "
            f"after ({after_b.status_code}, {after_c.status_code}) at service-b and service-c",
        )
