"""How the demo talks: numbered steps, indented details, PASS/FAIL lines; colour only on a terminal."""

from __future__ import annotations

import base64
import json
import os
import textwrap

CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


def wants_color(stream, *, force: bool = False, never: bool = False) -> bool:
    """Colour when writing to a terminal, unless NO_COLOR (https://no-color.org) or --no-color."""
    if never:
        return False
    if force:
        return True
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def decode_segment(segment: str) -> dict:
    """A JWT header or payload, decoded for display only (service-b is the one that verifies)."""
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def compact(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Narrator:
    """Writes the story; records each step's outcome."""

    def __init__(self, write, *, color: bool, width: int = 100):
        self._write, self.color, self.width = write, color, width
        self.results: list[tuple[str, bool, str]] = []

    def paint(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        return "\033[" + ";".join(CODES[s] for s in styles) + "m" + text + "\033[0m"

    def line(self, text: str = "") -> None:
        self._write(text)

    def title(self, text: str) -> None:
        self.line(self.paint(text, "bold"))

    def step(self, step_id: str, text: str) -> None:
        self.line()
        self.line(self.paint(f"[{step_id}] {text}", "bold", "cyan"))

    def say(self, text: str, *styles: str) -> None:
        for chunk in textwrap.wrap(text, self.width - 4, break_long_words=False, break_on_hyphens=False) or [""]:
            self.line("    " + self.paint(chunk, *styles))

    def field(self, label: str, value: str) -> None:
        """``label  value``, the value wrapped under itself (long words such as tokens stay whole)."""
        chunks = textwrap.wrap(value, self.width - 14, break_long_words=False, break_on_hyphens=False) or [""]
        self.line(f"    {self.paint(label.ljust(9), 'dim')} {chunks[0]}")
        for chunk in chunks[1:]:
            self.line(" " * 14 + chunk)

    def why(self, text: str) -> None:
        wrapped = textwrap.wrap(text, self.width - 11, break_long_words=False, break_on_hyphens=False)
        for i, chunk in enumerate(wrapped):
            self.line("    " + (self.paint("why", "yellow") + "    " if i == 0 else "       ") + chunk)

    def outcome(self, step_id: str, passed: bool, text: str) -> None:
        self.results.append((step_id, passed, text))
        mark = self.paint("PASS", "bold", "green") if passed else self.paint("FAIL", "bold", "red")
        self.line(f"    {mark} {step_id}: {text}")

    @property
    def failed(self) -> list[str]:
        return [step_id for step_id, passed, _ in self.results if not passed]
