"""The README's two set-up commands are what CI runs: first the demo, then the test suite.

This checks CI's scripts, not the library, so it lives beside them and the quality gates run it
(.ci/gates.sh, gate "ci-scripts"); the library's suite (tests/) does not.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
CI_RUN = ROOT / ".ci" / "run"


def readme_commands() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.commands(README.read_text())


def shell_commands(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_block_holds_the_demo_first_then_the_tests():
    block = re.search(r"\.\. setup-commands-start\n(.*?)\.\. setup-commands-end", README.read_text(), re.S)
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip().startswith("python3 ")]
    assert commands == [readme_commands()["demo"], readme_commands()["test"]]
    demo, test = commands
    assert demo.startswith("python3 -m venv .venv && ") and test.startswith("python3 -m venv .venv && ")
    assert "pip install -q -e '.[demo]'" in demo and demo.endswith(".venv/bin/python testproject/manage.py demo")
    assert "pip install -q -e '.[test]'" in test and test.endswith(".venv/bin/python -m pytest")


def test_the_extractor_prints_the_readme_commands_verbatim():
    for name in ("demo", "test"):
        done = subprocess.run(
            [sys.executable, str(ROOT / ".ci" / "readme_commands.py"), name],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.strip() == readme_commands()[name]


def test_ci_runs_exactly_the_readme_test_command_and_nothing_else():
    lines = shell_commands(CI_RUN)
    assert "test_cmd=$(python3 .ci/readme_commands.py test)" in lines
    run_at = lines.index('bash -c "$test_cmd"')
    # After the tests, only the Django 4.2 leg (the same suite under Django 4.2, in its own venv) and the
    # quality gates (lint, types, migrations, docs, build).
    assert [x for x in lines[run_at + 1 :] if not x.startswith("echo ")] == [
        "bash .ci/django42.sh",
        "bash .ci/gates.sh .venv/bin/python",
    ]
    leg = [x for x in shell_commands(ROOT / ".ci" / "django42.sh") if "pytest" in x]
    assert len(leg) == 1 and "'Django>=4.2,<5.0'" in (ROOT / ".ci" / "django42.sh").read_text()
    # The gates run pytest once, on this file only (CI's own checks), never the library's suite.
    gates = [x for x in shell_commands(ROOT / ".ci" / "gates.sh") if "pytest" in x]
    assert gates == ['gate ci-scripts "$PY" -m pytest -q -p no:cacheprovider .ci/test_readme_commands.py'], gates
    # No second way to run the tests hides in the script: pytest and manage.py come only from README.
    for line in lines:
        assert "pytest" not in line and "manage.py" not in line, line


def test_the_demo_extra_exists_and_tox_plays_the_same_demo():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "demo" in setup["options.extras_require"]
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    assert tox["testenv:demo"]["extras"].strip() == "demo"
    assert tox["testenv:demo"]["commands"].strip() == "python testproject/manage.py demo"
