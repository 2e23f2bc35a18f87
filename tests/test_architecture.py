"""The package's shape, read from its source (ast): no import cycle, no import of another module's
private name, pure modules free of Django and DRF, no module over the size limit.

Every import counts, module-level and inside functions alike (a lazy import still ties two modules
together; it only moves the moment the tie is made).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = "drf_m2m_auth"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 360  # "about 350": a module past this is split, not stretched

PURE = frozenset(
    {
        "errors",
        "jose",
        "keys",
        "fetch",
        "jwks",
        "jwks_shared",
        "tokens",
        "diagnostics",
        "scopes",
        "principal",
        "dpop",
        "dpop_key",
        "dpop_htu",
        "dpop_state",
        "mtls",
        "client",
        "token_endpoint",
        "token_cache",
        "bearer_auth",
        "statuslist",
        "statuslist_fetch",
        "statuscheck",
        "issuers",
        "presets",
        "validation",
        "events",
        "verified_cache",
        "trust",
        "token_rules",
    }
)

# The documented exceptions to "pure modules import no Django": (pure module, module it imports
# lazily inside a function, why). Nothing else may appear here without a line in the module's docs.
LAZY_DJANGO_IMPORTS = {
    # A client given a Django cache alias (a string) resolves it through shared.py, which is the
    # Django layer; a client given a cache object, or none, never imports Django.
    ("token_cache", "drf_m2m_auth.shared"): "resolving a Django cache alias (client cache='default')",
}

FRAMEWORKS = ("django", "rest_framework")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in MODULES.items()}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, module: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class Import:
    def __init__(self, importer: str, target: str, names: tuple[str, ...], lineno: int, lazy: bool):
        self.importer, self.target, self.names, self.lineno, self.lazy = importer, target, names, lineno, lazy

    def __repr__(self) -> str:
        where = "inside a function" if self.lazy else "at module level"
        return f"{self.importer}:{self.lineno} imports {self.target} {list(self.names)} ({where})"


def _imports(name: str) -> list[Import]:
    found: list[Import] = []

    def walk(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(name, alias.name, (), child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(name, child.module, child.level)
                found.append(Import(name, target, tuple(a.name for a in child.names), child.lineno, lazy))
            walk(child, inner)

    walk(TREES[name], False)
    return found


IMPORTS = {name: _imports(name) for name in MODULES}


def _edges(name: str) -> set[str]:
    """The package's modules that ``name`` imports (``from . import x`` imports module x)."""
    out = set()
    for imp in IMPORTS[name]:
        if imp.target in MODULES:
            out.add(imp.target)
        for imported in imp.names:
            sub = f"{imp.target}.{imported}"
            if sub in MODULES:
                out.add(sub)
    out.discard(name)
    return out


def _cycles() -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), as a sorted list."""
    graph = {name: _edges(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return components


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(name: str) -> list[str]:
    """``from .x import _y`` and ``x._y`` where x is another module of the package."""
    problems = []
    module_aliases: dict[str, str] = {}  # local name -> package module it is bound to
    for imp in IMPORTS[name]:
        if imp.target in MODULES and imp.target != name:
            for imported in imp.names:
                if _private(imported) and f"{imp.target}.{imported}" not in MODULES:
                    problems.append(f"{imp!r}: {imported} is private to {imp.target}")
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, node.module, node.level)
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    module_aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    module_aliases[alias.asname] = alias.name
    for node in ast.walk(TREES[name]):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        owner = ast.unparse(node.value)
        target = module_aliases.get(owner, owner if owner in MODULES else None)
        if target is not None and target != name:
            problems.append(f"{name}:{node.lineno} uses {owner}.{node.attr}, private to {target}")
    return problems


def test_the_walker_sees_every_kind_of_import():
    """The walk itself: a function-level import and a ``from . import x`` are both edges."""
    edges = _edges(f"{PACKAGE}.apps")
    assert any(imp.lazy for imp in IMPORTS[f"{PACKAGE}.apps"])  # ready() imports lazily
    assert edges, "apps.py imports package modules inside ready(): the walker must see them"
    assert f"{PACKAGE}.errors" in _edges(f"{PACKAGE}.tokens")
    assert len(MODULES) > 40


@pytest.fixture
def planted(monkeypatch):
    """Plant extra modules (name -> source) in the walked package, for the walker's own tests."""

    def plant(**sources: str) -> None:
        for short, source in sources.items():
            name = f"{PACKAGE}.{short}"
            monkeypatch.setitem(MODULES, name, ROOT / f"{short}.py")
            monkeypatch.setitem(TREES, name, ast.parse(source))
        for short in sources:
            monkeypatch.setitem(IMPORTS, f"{PACKAGE}.{short}", _imports(f"{PACKAGE}.{short}"))

    return plant


def test_the_checks_catch_what_they_forbid(planted):
    """Each rule fails on a planted violation (a lazy cycle, both kinds of private use, Django)."""
    planted(
        zz_a="from . import zz_b\n",
        zz_b="def f():\n    from .zz_a import _hidden\n",
        zz_c="from . import jwks\n\nx = jwks._POLL\n",
        zz_d="import drf_m2m_auth.keys as k\n\ny = k._private\nz = k.__all__\n",
    )
    assert [f"{PACKAGE}.zz_a", f"{PACKAGE}.zz_b"] in _cycles()
    assert len(_private_uses(f"{PACKAGE}.zz_b")) == 1
    assert _private_uses(f"{PACKAGE}.zz_c") == [f"{PACKAGE}.zz_c:3 uses jwks._POLL, private to {PACKAGE}.jwks"]
    assert len(_private_uses(f"{PACKAGE}.zz_d")) == 1  # k._private; k.__all__ is not private
    planted(jose="def f():\n    from django.conf import settings\n")
    with pytest.raises(AssertionError):
        test_pure_modules_import_neither_django_nor_drf("jose")
    planted(jose="from . import conf\n")
    with pytest.raises(AssertionError):
        test_pure_modules_import_neither_django_nor_drf("jose")


def test_no_import_cycle():
    assert _cycles() == []


def test_no_module_imports_another_modules_private_name():
    problems = [p for name in MODULES for p in _private_uses(name)]
    assert problems == []


@pytest.mark.parametrize("short", sorted(PURE))
def test_pure_modules_import_neither_django_nor_drf(short):
    name = f"{PACKAGE}.{short}"
    if name not in MODULES:
        pytest.fail(f"{name} is listed as pure but does not exist")
    bad = []
    for imp in IMPORTS[name]:
        framework = imp.target.split(".")[0] in FRAMEWORKS
        # A package module that is not pure is the Django layer: importing it imports Django.
        django_layer = imp.target in MODULES and imp.target.split(".", 1)[-1] not in PURE
        django_layer = django_layer or any(
            f"{imp.target}.{n}" in MODULES and n not in PURE for n in imp.names if imp.target == PACKAGE
        )
        if not (framework or django_layer):
            continue
        if imp.lazy and (short, imp.target) in LAZY_DJANGO_IMPORTS:
            continue
        bad.append(repr(imp))
    assert bad == []


def test_documented_lazy_imports_still_exist():
    """An exception that is no longer needed is removed from the list, not left to excuse a new one."""
    for short, target in LAZY_DJANGO_IMPORTS:
        assert any(imp.lazy and imp.target == target for imp in IMPORTS[f"{PACKAGE}.{short}"]), (short, target)


def _defines_anything(name: str) -> bool:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    return not all(isinstance(node, ast.Expr) for node in tree.body)  # not an empty package marker


@pytest.mark.parametrize(
    "name",
    sorted(n for n in MODULES if ".migrations." not in n and ".management.commands." not in n and _defines_anything(n)),
)
def test_every_module_says_what_it_exports(name):
    """__all__ in every module that defines anything: its public names, nothing implied."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    names = [
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    ]
    assert "__all__" in names, f"{name} has no __all__"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it"


# A tracker issue's number means nothing to a reader of this repository: say what the thing is.
_TRACKER_REF = re.compile(r"\b" + "issue" + r"s? ?#?\d+", re.IGNORECASE)
_TEXT_SUFFIXES = {".py", ".rst", ".md", ".txt", ".cfg", ".toml", ".ini", ".html", ".sh", ".yml", ".yaml"}


def test_no_text_refers_to_a_tracker_issue_by_number():
    repo = ROOT.parent
    roots = [ROOT, *(repo / d for d in ("tests", "benchmarks", "docs", ".ci", ".github", "testproject"))]
    files = [p for r in roots if r.exists() for p in r.rglob("*") if p.suffix in _TEXT_SUFFIXES and p.is_file()]
    files += [p for p in repo.glob("*") if p.suffix in _TEXT_SUFFIXES and p.is_file()]
    found = [
        f"{p.relative_to(repo)}:{n}"
        for p in files
        if "_build" not in p.parts and "results" not in p.parts
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if _TRACKER_REF.search(line)
    ]
    assert found == []
