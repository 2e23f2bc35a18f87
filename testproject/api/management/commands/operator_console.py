"""Run management commands read from stdin, one per line, in one warm process (used by the demo).

Each line is a command as an operator would type it after ``manage.py`` (``m2m_revoke --client
service-a``); each answer is one JSON line ``{"rc": 0, "out": "..."}``. It exits at end of input,
so it dies with the process that feeds it.
"""

from __future__ import annotations

import io
import json
import shlex
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run management commands read from stdin, one per line; answer one JSON line each."
    requires_system_checks = ()

    def handle(self, *args, **options):
        for line in sys.stdin:
            words = shlex.split(line)
            if not words:
                continue
            out = io.StringIO()
            try:
                call_command(*words, stdout=out, stderr=out)
                rc = 0
            except (CommandError, SystemExit) as exc:
                out.write(str(exc))
                rc = getattr(exc, "returncode", None) or getattr(exc, "code", None) or 1
            sys.stdout.write(json.dumps({"rc": rc, "out": out.getvalue()}) + "\n")
            sys.stdout.flush()
