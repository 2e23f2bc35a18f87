"""Print one of the README's two set-up commands ('demo' or 'test'): CI runs exactly what users read."""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.rst"


def commands(text: str) -> dict[str, str]:
    block = re.search(r"\.\. setup-commands-start\n(.*?)\.\. setup-commands-end", text, re.S)
    if not block:
        raise SystemExit("README.rst has no setup-commands block")
    lines = [line.strip() for line in block.group(1).splitlines()]
    cmds = [line for line in lines if line.startswith("python3 ")]
    if len(cmds) != 2:
        raise SystemExit(f"README.rst must hold exactly two set-up commands, found {len(cmds)}")
    demo, test = cmds
    if "demo" not in demo or "pytest" not in test:
        raise SystemExit("README.rst set-up commands must be: first the demo, then the test suite")
    return {"demo": demo, "test": test}


if __name__ == "__main__":
    print(commands(README.read_text())[sys.argv[1]])
