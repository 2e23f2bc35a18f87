"""Python examples of the README and the docs, extracted from the documents themselves.

Every ``.. code-block:: python`` is an example. The rst comment right before a block says how it runs
(none: the block is executed as it is):

``.. doctest-skip: <reason>``
    not run; tests/test_doc_examples.py lists it with its reason.
``.. doc-example: views``
    executed as the module ``tests.doc_examples_app.views`` (its ``from .models import Order`` and
    ``from .serializers import OrderSerializer`` find the example app's model and serializer), and
    served under ``/orders/`` by ``tests.doc_examples_app.urls``.
``.. doc-example: urls``
    executed with ``orders.views`` standing for the views example, and used as the URL conf.
``.. doc-example: tests``
    its ``test_*`` functions are run with the pytest fixtures they name, against that URL conf.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.rst", *sorted((ROOT / "docs").rglob("*.rst"))]

BLOCK = re.compile(
    r"(?P<before>(?:^\.\. (?:doctest-skip|doc-example):[^\n]*\n\n)?)"
    r"^(?P<indent> *)\.\. code-block:: python\n(?P<body>(?:(?P=indent) {3,}[^\n]*\n|[ \t]*\n)+)",
    re.M,
)


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str
    mode: str  # "run", "views", "urls", "tests" or "skip"
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples(documents: list[Path] = DOCUMENTS) -> list[Example]:
    found = []
    for path in documents:
        if "_build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("indent")) + 1
            code = textwrap.dedent(match.group("body")).strip("\n") + "\n"
            marker = match.group("before").strip()
            mode, reason = "run", ""
            if marker.startswith(".. doctest-skip:"):
                mode, reason = "skip", marker.split(":", 1)[1].strip()
            elif marker.startswith(".. doc-example:"):
                mode = marker.split(":", 1)[1].strip()
            found.append(Example(path, line, code, mode, reason))
    return found


def the_views_example() -> Example:
    (views,) = [example for example in examples() if example.mode == "views"]
    return views
