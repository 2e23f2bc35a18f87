"""manage.py demo: the scenario plays as expected, says so step by step, and fails loudly otherwise."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from testproject.api.management.commands import demo as demo_command
from testproject.api.narration import Narrator, wants_color

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["1", "2", "3", "4a", "4b", "4c", "5a", "5b", "6", "7", "8"]
EXPECTED = {  # each step's outcome, as the demo states it
    "1": "scope read:data",
    "2": "200",
    "3": "403 insufficient_scope",
    "4a": "403 access_denied",
    "4b": "401 invalid_token",
    "5a": "401 invalid_token (expired)",
    "4c": "200 for its 'reports' grant, 403 no grant for service-b's 'data'",
    "5b": "200 before, 401 invalid_token after, at service-b and service-c",
    "6": "no restart",
    "7": "401 invalid_token for the thief",
    "8": "200 before, 401 invalid_token",
}


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """One run of ``manage.py demo`` for the tests below: (completed process, TMPDIR, dev db existed)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    dev_db = ROOT / "testproject" / "db.sqlite3"
    dev_db_existed = dev_db.exists()
    # stdout is a pipe, so plain text; TMPDIR shows what the demo leaves behind.
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("NO_COLOR", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "testproject" / "manage.py"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    return done, tmpdir, dev_db_existed


def verdicts(out: str) -> dict[str, tuple[str, str]]:
    found = re.findall(r"^    (PASS|FAIL) (\w+): (.*)$", out, re.M)
    assert [step for _, step, _ in found] == STEPS, out
    return {step: (verdict, said) for verdict, step, said in found}


@pytest.mark.slow
def test_the_demo_plays_every_step_as_expected(played):
    done, tmpdir, dev_db_existed = played
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for step, (verdict, said) in verdicts(out).items():
        assert verdict == "PASS" and EXPECTED[step] in said, (step, verdict, said)
    assert f"All {len(STEPS)} steps as expected" in out
    assert "\033[" not in out
    for claim in ("iss", "aud", "sub", "scope", "iat", "exp"):  # step 1 shows the decoded claims
        assert re.search(rf"^    {claim} +\S", out, re.M), claim
    assert 'WWW-Authenticate: Bearer realm="api", error="insufficient_scope", scope="write:data"' in out
    # The control plane granted both APIs, one command each, before the steps.
    assert re.findall(r"manage\.py m2m_grant service-a (\w+) --api (\S+)", out[: out.index("[1]")]) == [
        ("data", "https://service-b.example"),
        ("reports", "https://reports.example"),
    ]
    # Step 5b: ONE m2m_revoke, at the control plane, and each service shows its own 401 for service-a.
    fleet_step = out[out.index("[5b]") : out.index("[6]")]
    assert fleet_step.count("manage.py m2m_revoke") == 1 and "(at the control plane)" in fleet_step
    answers = re.findall(r"^    (service-[bc]) +GET .*\n    answer +(\d+)", fleet_step, re.M)
    assert answers == [("service-b", "401"), ("service-c", "401")], fleet_step
    assert fleet_step.count('error="invalid_token"') == 2
    assert not list(tmpdir.iterdir())  # temporary databases and logs are gone
    dev_db = ROOT / "testproject" / "db.sqlite3"
    assert dev_db.exists() == dev_db_existed  # the developer's database is not used


@pytest.mark.slow
def test_a_grant_on_service_bs_api_gives_nothing_at_service_c(played):
    out = played[0].stdout
    grant_step = out[out.index("[4c]") : out.index("[5a]")]
    assert re.search(r"^    service-c GET \S+/reports/  ->  200 OK$", grant_step, re.M), grant_step
    assert re.search(r"^    answer +403 Forbidden$", grant_step, re.M) and "no grant for this resource" in grant_step


class FakeDemo:
    """Stands in for the real scenario: no processes, one step that goes wrong."""

    def __init__(self, workdir, narrator):
        self.n = narrator

    def start(self, timeout):
        pass

    def stop(self):
        pass

    def run(self):
        self.n.step("1", "something")
        self.n.outcome("1", True, "as expected")
        self.n.step("2", "something else")
        self.n.outcome("2", False, "expected 200, got 401")


def test_the_command_exits_non_zero_when_a_step_differs(monkeypatch, capsys):
    monkeypatch.setattr(demo_command, "Demo", FakeDemo)
    with pytest.raises(CommandError, match="did not go as expected"):
        call_command("demo")
    out = capsys.readouterr().out
    assert "PASS 1: as expected" in out and "FAIL 2: expected 200, got 401" in out
    assert "1/2 steps as expected; failed: 2" in out


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_color(Tty()) and not wants_color(io.StringIO())
    assert not wants_color(Tty(), never=True) and wants_color(io.StringIO(), force=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color(Tty())


def test_narrator_paints_only_when_asked():
    lines = []
    Narrator(lines.append, color=True).outcome("1", True, "fine")
    Narrator(lines.append, color=False).outcome("1", True, "fine")
    assert "\033[" in lines[0] and lines[1] == "    PASS 1: fine"


def test_forced_colour_reaches_the_output(monkeypatch, capsys):
    monkeypatch.setattr(demo_command, "Demo", FakeDemo)
    with pytest.raises(CommandError):
        call_command("demo", force_color=True)
    assert "\033[" in capsys.readouterr().out


@pytest.mark.django_db
def test_operator_console_answers_each_command_with_its_outcome(monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO(
            "issuer_api https://x.example --scopes 'read:x write:x'\n\nissuer_client grant nobody https://x.example\n"
        ),
    )
    call_command("operator_console")
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [answer["rc"] for answer in answers] == [0, 1]
    assert "Created API https://x.example scopes=[read:x write:x]" in answers[0]["out"]
    assert "No client 'nobody'" in answers[1]["out"]


@pytest.mark.django_db
def test_the_control_plane_grants_every_api_from_one_place_with_m2m_grant():
    from drf_m2m_auth.models import ResourceGrant
    from testproject.api import scenario as sc
    from testproject.api.demo_fleet import grant_commands

    spec = sc.fleet_seed("not-a-secret")
    assert "clients" not in spec["service_b"]  # service-b registers nobody: the control plane does
    commands = grant_commands(spec)
    assert all(command[0] == "m2m_grant" and "--api" in command for command in commands)
    for _ in range(2):  # a second run changes nothing
        for command in commands:
            call_command(*command, stdout=io.StringIO())
    assert set(ResourceGrant.objects.values_list("client__client_id", "api", "resource")) == {
        (sc.SERVICE_A, sc.SERVICE_B_AUDIENCE, sc.RESOURCE),
        (sc.SERVICE_A, sc.REPORTS_AUDIENCE, sc.REPORTS),
    }
