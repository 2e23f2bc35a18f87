"""m2m_drill: prove that a change made here reaches every listed service, and how fast.

Run it at the control plane (any project with the app and the fleet's database) after a deploy::

    python manage.py m2m_drill --service http://orders.internal/m2m/status \\
                               --service http://billing.internal/m2m/status --bound 5

It makes a harmless change: a canary client (``CANARY_ID``) is registered *inactive and without
grants* (or, if it is already registered, saved unchanged, which still counts as a change). An
inactive client without grants can only refuse the canary id, never let anything in, whatever
``UNREGISTERED_CLIENTS`` says. Right after the commit it reads the version its write produced from
the database (``RevocationState.sequence``, the number the status view reports), polls every
service's status view until it reports ``version >= V``, prints each service's propagation time,
and restores: the canary it created is deleted together with the tombstone that deletion writes,
so the canary id is exactly as unregistered as before.

A token for ``STATUS_VIEW_ACCESS = "scope:..."`` is read from the environment variable
``M2M_DRILL_TOKEN`` (never from the command line, where ``ps`` would show it).

Exit status: 0 every service saw the change within ``--bound`` seconds; 1 otherwise (or a
service answered an error); 2 usage error.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction

from drf_m2m_auth.models import Client, DeletedClient, RevocationState

CANARY_ID = "drf-m2m-auth-drill-canary"
POLL_INTERVAL = 0.02  # seconds between two rounds of status requests
REQUEST_TIMEOUT = 2.0


def current_version(using: str) -> int | None:
    """The change sequence the database holds now: read right after our commit, it is at least our
    own change's number, and a service reporting ``version >= V`` has applied every change up to V."""
    return RevocationState.objects.using(using).filter(pk=1).values_list("sequence", flat=True).first()


def make_change(using: str) -> tuple[bool, int | None, float]:
    """Write the canary change; (created, version after the commit, monotonic time of the commit)."""
    with transaction.atomic(using=using):
        canary = Client.objects.using(using).filter(client_id=CANARY_ID).first()
        created = canary is None
        if created:
            had_tombstone = DeletedClient.objects.using(using).filter(client_id=CANARY_ID).exists()
            if had_tombstone:
                raise CommandError(
                    f"a tombstone for {CANARY_ID!r} exists (a deleted client of that id): "
                    "delete it in the admin if it is a leftover of an interrupted drill"
                )
            Client.objects.using(using).create(
                client_id=CANARY_ID, name="m2m_drill canary", description="m2m_drill canary", is_active=False
            )
        else:
            canary.save()  # a new revision and stamp: a change, with nothing changed
    committed = time.monotonic()
    return created, current_version(using), committed


def restore(using: str, created: bool) -> None:
    if not created:
        return
    with transaction.atomic(using=using):
        Client.objects.using(using).filter(client_id=CANARY_ID, is_active=False).delete()
        DeletedClient.objects.using(using).filter(client_id=CANARY_ID).delete()


def read_version(session: Any, url: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """(version, None) or (None, what went wrong) for one status request."""
    import requests

    try:
        response = session.get(url, headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        hint = {403: " (STATUS_VIEW_ACCESS refuses this caller)", 503: " (not loaded yet)"}.get(
            response.status_code, ""
        )
        return None, f"HTTP {response.status_code}{hint}"
    try:
        version = response.json()["revocation"]["version"]
    except (ValueError, KeyError, TypeError):
        return None, "not a status view answer"
    return (version if type(version) is int else None), None


def poll(urls: list[str], target: int, since: float, bound: float, token: str | None) -> dict[str, dict[str, Any]]:
    """Poll every URL until it reports ``version >= target`` or ``bound`` seconds have passed."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    results: dict[str, dict[str, Any]] = {url: {"seconds": None, "version": None, "error": None} for url in urls}
    pending = list(urls)
    deadline = since + bound
    with requests.Session() as session:
        while pending and time.monotonic() < deadline:
            for url in list(pending):
                version, error = read_version(session, url, headers)
                results[url]["error"] = error
                if version is not None:
                    results[url]["version"] = version
                    if version >= target:
                        results[url]["seconds"] = round(time.monotonic() - since, 3)
                        pending.remove(url)
            if pending:
                time.sleep(POLL_INTERVAL)
    return results


class Command(BaseCommand):
    help = (
        "Make a harmless change (an inactive canary client), wait until every --service status view "
        "reports its version, print the propagation times, restore. Exit status 1 past --bound."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--service",
            action="append",
            required=True,
            metavar="URL",
            help="a service's status view URL, e.g. http://orders.internal/m2m/status (repeatable)",
        )
        parser.add_argument(
            "--bound", type=float, default=10.0, metavar="SECONDS", help="fail past this many seconds (default 10)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **opts):
        bound = opts["bound"]
        if not (bound > 0 and math.isfinite(bound)):
            raise CommandError("--bound must be a positive, finite number of seconds")
        urls = list(dict.fromkeys(opts["service"]))
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise CommandError(f"--service must be an http(s) URL of a status view, not {bad[0]!r}")
        using = router.db_for_write(Client)
        created, target, since = make_change(using)
        try:
            if target is None:
                raise CommandError("the database holds no revocation state after the change")
            results = poll(urls, target, since, bound, os.environ.get("M2M_DRILL_TOKEN") or None)
        finally:
            restore(using, created)
        late = [u for u, r in results.items() if r["seconds"] is None]
        slowest = max((r["seconds"] for r in results.values() if r["seconds"] is not None), default=None)
        if opts["json"]:
            report = {
                "version": target,
                "canary": CANARY_ID,
                "bound_s": bound,
                "services": results,
                "slowest_s": slowest,
                "ok": not late,
            }
            self.stdout.write(json.dumps(report, indent=2))
        else:
            action = "registered (inactive, no grants)" if created else "saved unchanged"
            self.stdout.write(f"canary {CANARY_ID!r} {action}: version {target}")
            for url, r in results.items():
                if r["seconds"] is not None:
                    self.stdout.write(f"  {url}: version {r['version']} after {r['seconds']:.3f} s")
                else:
                    seen = r["error"] or f"still at version {r['version']}"
                    self.stdout.write(f"  {url}: NOT within {bound:g} s ({seen})")
            self.stdout.write("canary removed" if created else "canary left as it was")
        if late:
            raise CommandError(
                f"{len(late)} of {len(urls)} service(s) did not report version {target} within {bound:g} s"
            )
        if not opts["json"]:
            self.stdout.write(f"every service saw the change within {slowest:.3f} s (bound {bound:g} s)")
