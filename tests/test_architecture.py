"""The dependency direction views -> advisors -> models, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_models_import_nothing_above_them():
    for path, names in _imports("models").items():
        assert not names & {"advisors", "views", "flask_login", "flask_wtf"}, path


def test_advisors_do_not_import_views_except_the_factory():
    for path, names in _imports("advisors").items():
        if path == "advisors/__init__.py":
            continue  # the composition root registers the blueprints
        assert "views" not in names, path


def test_services_never_read_the_request():
    for path in (ROOT / "advisors" / "services").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "request" not in {
            n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)
        }, path


def test_sqlite_pragmas_are_set(app):
    from sqlalchemy import text

    from models import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_migrations_match_the_models(app):
    """The schema the migrations build is the schema the models describe."""
    import warnings

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from models import db

    with db.engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expression indexes cannot be compared on SQLite
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], diff


# ----------------------------------------------------------------------------- house rules
PRODUCT = ("advisors", "views", "models")
FUNCTION_MAX_LINES = 60
# Hot loops the benchmarks show must stay written out (each says why in its docstring).
LONG_BY_MEASUREMENT = {"advisors/sheet_reader.py:_sheet_rows"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PRODUCT for path in (ROOT / package).rglob("*.py")
    }


def _imported(node: ast.ImportFrom | ast.Import, module: str, is_package: bool) -> list[str]:
    """The modules one import statement may name: each ``from`` name as a submodule, then the
    module it is taken from (last)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names] + [""]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]


def _import_graph() -> dict[str, set[str]]:
    """module -> the product modules it imports, at the top or inside a function."""
    modules = _product_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                *named, prefix = _imported(node, module, path.name == "__init__.py")
                found = [name for name in named if name in modules]
                # ``from pkg import submodule`` depends on the submodule, not on pkg's face
                targets.update(found if found else [prefix] if prefix in modules else [])
        targets.discard(module)
        graph[module] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    """No two product modules import each other, directly or round a circle, even from
    inside a function (a package face importing its own submodules aside)."""
    graph = _import_graph()
    for module, targets in graph.items():
        # a package's face hands on its submodules' names: not a dependency of theirs on it
        graph[module] = {t for t in targets if not t.startswith(module + ".")}
    assert _circles(graph) == []


def test_functions_are_small():
    """No function in the product over about a screen: split it into named steps."""
    long = []
    for path in _product_modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(ROOT)}:{node.name}"
                if lines > FUNCTION_MAX_LINES and where not in LONG_BY_MEASUREMENT:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert long == []


def test_templates_have_no_inline_style_or_script():
    """The CSP allows neither (style-src and script-src 'self'): the browser would drop them."""
    found = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        if " style=" in text or "<script>" in text or "<style" in text:
            found.append(str(path.relative_to(ROOT)))
    assert found == []
