"""manage.py demo: the machine-to-machine scenario end to end over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from testproject.api.demo import Demo
from testproject.api.narration import Narrator, wants_color
from testproject.api.processes import ServiceError


class Command(BaseCommand):
    help = (
        "Play the scenario: service-a gets client_credentials tokens from a local issuer and calls "
        "service-b and service-c (a fleet sharing drf_m2m_auth's tables with a control plane), over real "
        "HTTP on 127.0.0.1, in temporary databases. Exits 1 if any step's outcome differs from the "
        "expected one."
    )
    requires_system_checks = []  # it touches no database of this project

    def add_arguments(self, parser):
        parser.add_argument(
            "--startup-timeout",
            type=float,
            default=60.0,
            help="seconds to wait for the issuer, service-b and service-c to start",
        )

    def handle(self, *args, startup_timeout, **options):
        color = wants_color(sys.stdout, force=options.get("force_color", False), never=options.get("no_color", False))
        narrator = Narrator(self._print, color=color)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="drf-m2m-demo-") as tmp:
            demo = Demo(Path(tmp), narrator)
            try:
                narrator.line(
                    narrator.paint(
                        "Starting the issuer, service-b, service-c and the control plane (temporary SQLite "
                        "databases, one of them the fleet's)...",
                        "dim",
                    )
                )
                demo.start(startup_timeout)
                narrator.line(narrator.paint(f"Started in {time.monotonic() - started:.1f} s.", "dim"))
                demo.run()
            except ServiceError as exc:
                raise CommandError(f"could not start the demo's services: {exc}") from exc
            finally:
                demo.stop()
        elapsed = time.monotonic() - started
        total, failed = len(narrator.results), narrator.failed
        narrator.line()
        if failed:
            narrator.line(
                narrator.paint(
                    f"{total - len(failed)}/{total} steps as expected; failed: {', '.join(failed)}  ({elapsed:.1f} s)",
                    "bold",
                    "red",
                )
            )
            raise CommandError("the demo did not go as expected")
        narrator.line(narrator.paint(f"All {total} steps as expected ({elapsed:.1f} s).", "bold", "green"))
        python = os.path.relpath(sys.executable) if Path(sys.executable).is_relative_to(Path.cwd()) else "python"
        manage = f"{python} {os.path.relpath(Path(__file__).resolve().parents[3] / 'manage.py')}"
        narrator.line(f"Explore next: {manage} migrate && {manage} demo_data && {manage} runserver")

    def _print(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
