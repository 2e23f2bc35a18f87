"""Local Sphinx extension for the drf_m2m_auth docs.

``.. m2m-settings::`` renders the settings reference from the package's own settings table,
``drf_m2m_auth.conf.SETTINGS`` (``{name: Setting}``, each with ``.default`` and ``.doc`` in reST), so
the reference can never disagree with the code.

``.. m2m-reason-codes::`` renders every rejection reason code found in the package's source.

The RFC links use Sphinx's built-in role: :rfc:`6750#section-3.1` links that section.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CODE = re.compile(r"^[a-z][a-z0-9_]+$")


def format_default(value: Any) -> str:
    """A default as the reference shows it: Python's repr with double quotes (what users paste)."""
    return repr(value).replace("'", '"')


def indent(text: str, by: str = "    ") -> list[str]:
    return [by + line if line.strip() else "" for line in text.strip("\n").splitlines()]


def render_table(table: dict[str, Any]) -> list[str]:
    """reST for a ``{name: Setting}`` table: one labelled entry per setting, in the table's order."""
    lines: list[str] = []
    for name, setting in table.items():
        doc = (getattr(setting, "doc", "") or "").strip()
        if not doc:
            raise ValueError(f"setting {name} has no doc")
        lines += [f".. _setting-{name}:", "", f"``{name}``", f"    Default: ``{format_default(setting.default)}``.", ""]
        lines += indent(doc)
        lines.append("")
    return lines


def settings_source() -> tuple[list[str], list[str]]:
    from drf_m2m_auth import conf

    return render_table(conf.SETTINGS), []


def reason_codes(package: Path) -> dict[str, list[tuple[str, str]]]:
    """``{code: [(module, description), ...]}`` for every rejection the package's source can raise.

    A rejection is a call that passes a description string first and a reason code either as
    ``reason="code"`` or, for the ``_fail(description, code, ...)`` helpers, second. Read from the
    source (not a hand-kept list), so a new code is documented by the build that adds it.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts or "management" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        owner: dict[ast.AST, str] = {}
        for cls in ast.walk(tree):
            if isinstance(cls, ast.ClassDef):
                doc = (ast.get_docstring(cls) or "").split("\n")[0]
                for inner in ast.walk(cls):
                    owner[inner] = doc
        for node in ast.walk(tree):
            # An error class's own code: ``default_reason = "keys_unavailable"`` under its docstring.
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(getattr(t, "id", None) == "default_reason" for t in stmt.targets)
                        and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                        and CODE.match(stmt.value.value)
                    ):
                        text = (ast.get_docstring(node) or "").split("\n")[0]
                        found.setdefault(stmt.value.value, [])
                        if text and (module, text) not in found[stmt.value.value]:
                            found[stmt.value.value].append((module, text))
                continue
            if not isinstance(node, ast.Call) or not node.args:
                continue
            code = None
            for kw in node.keywords:
                if kw.arg == "reason" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    code = kw.value.value
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if code is None and name.endswith("_fail") and len(node.args) > 1:
                second = node.args[1]
                if isinstance(second, ast.Constant) and isinstance(second.value, str):
                    code = second.value
            if code is None or not CODE.match(code):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
            elif isinstance(first, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "..." for v in first.values)
            elif owner.get(node):
                text = owner[node]  # e.g. errors.KeysUnavailable: the class says when it is raised
            else:
                continue
            found.setdefault(code, [])
            if (module, text) not in found[code]:
                found[code].append((module, text))
    return dict(sorted(found.items()))


def render_reasons(codes: dict[str, list[tuple[str, str]]]) -> list[str]:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 55 20",
        "",
        "   * - reason code",
        "     - ``error_description`` (examples)",
        "     - raised in",
    ]
    for code, uses in codes.items():
        texts = sorted({text.replace("`", "'") for _, text in uses})
        modules = sorted({module for module, _ in uses})
        lines.append(f"   * - .. _reason-{code}:")
        lines.append("")
        lines.append(f"       ``{code}``")
        lines.append("     - " + " | ".join(texts))
        lines.append("     - " + ", ".join(f"``{m}``" for m in modules))
    return lines


class ReasonsDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        import drf_m2m_auth

        package = Path(drf_m2m_auth.__file__).resolve().parent
        for path in package.rglob("*.py"):
            self.env.note_dependency(str(path))
        container = nodes.container()
        lines = render_reasons(reason_codes(package))
        self.state.nested_parse(StringList(lines, source="drf_m2m_auth"), self.content_offset, container)
        return container.children


class SettingsDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        lines, problems = settings_source()
        for problem in problems:
            logger.warning("settings reference: %s", problem, location=self.get_location())
        self.env.note_dependency(str(Path(__file__).resolve().parents[2] / "drf_m2m_auth" / "settings_table.py"))
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="drf_m2m_auth.conf"), self.content_offset, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("m2m-settings", SettingsDirective)
    app.add_directive("m2m-reason-codes", ReasonsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
