"""manage.py fleet_seed SCENARIO.json: the control plane registers the demo's clients and their grants.

Run where drf_m2m_auth's tables are the fleet's (the demo's control plane); it applies the
scenario's ``control_plane`` part (see ``testproject.api.scenario.fleet_seed``) in one transaction.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Register the scenario's clients and grant them resources per API (the control plane's part)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("scenario", help="a JSON scenario file with a 'control_plane' part")

    def handle(self, *args, scenario, **options):
        from testproject.api.seed import apply

        with open(scenario) as f:
            spec = json.load(f).get("control_plane")
        if not spec:
            raise CommandError(f"{scenario} has no 'control_plane' part")
        apply(spec)
        grants = sum(len(r) for c in spec.get("clients", []) for r in c.get("grants", {}).values())
        self.stdout.write(f"{len(spec.get('clients', []))} client(s), {grants} grant(s) across APIs")
