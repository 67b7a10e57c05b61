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
