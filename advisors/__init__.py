"""The application package: app factory, domain services, scoring, scheduler, CLI."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

import config as config_module

BASE_DIR = Path(__file__).resolve().parent.parent


def create_app(config=None) -> Flask:
    """Build the WSGI application. ``config``: a config class, its name, or a dict (tests)."""
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str(BASE_DIR / "instance"),
    )
    try:
        settings = config_module.resolve(config)
    except config_module.ConfigurationError as exc:
        # One line on stderr, then exit status 4: gunicorn's "app failed to load", so its
        # master stops instead of restarting workers that cannot start either.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(4) from None
    app.config.from_mapping(settings)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic announces each of its plugins at INFO on every command: noise on the CLI's stderr.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    trust_proxies(app)
    register_extensions(app)
    register_i18n(app)
    register_web(app)
    register_cli(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, take the client address and scheme from the
    X-Forwarded-For / -Proto entries those proxies appended (the last N), so
    ``request.remote_addr`` is the client everywhere. Entries further left are the client's own
    claims and are ignored; with 0 the headers are ignored altogether."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops < 0:
        raise ValueError(f"TRUSTED_PROXIES must be 0 or more, not {hops}")
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_extensions(app: Flask) -> None:
    from . import (
        audit,  # noqa: F401  (registers the audit listener)
        lifecycle,  # noqa: F401  (registers derived-field listeners)
    )
    from .extensions import bootstrap, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    bootstrap.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    from .security import load_session_user

    login_manager.user_loader(load_session_user)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, use WAL, and wait on a lock instead of failing at once."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def register_i18n(app: Flask) -> None:
    from .i18n import init_i18n

    init_i18n(app)


def register_web(app: Flask) -> None:
    # The factory is the composition root: it is the one place in advisors/ that knows views/.
    from views import register_views

    from .permissions import init_app as init_permissions

    register_views(app)
    init_permissions(app)  # the templates' may_open(endpoint): the gate's rules


def register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)
