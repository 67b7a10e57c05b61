"""What ``python run.py`` does before it serves: migrate, load the demo data set on an empty
database when that is allowed, and tell the operator where the app is and what to do next.

The demo is allowed when ``app.config["DEMO_DATA"]`` is true (config.py: on in development
unless ``DEMO_DATA=0``, off under ``APP_CONFIG=production`` unless ``DEMO_DATA=1``). The demo
logins are printed only while they work: the demo is allowed and the demo administrator still
signs in with the demo password. Console text, for the operator: not translated.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

NEXT_STEPS = """\
  The database has no users yet. To start a real city, run these with the same environment
  as this server (DATABASE_URL, APP_CONFIG, SECRET_KEY); README.md, "Start a real city":

  1. the first administrator (a password of 8 or more characters, not a common one):
       flask --app run users create --username admin --password '…' --role admin
  2. the organisations (TYPE: finance_office, pboc, bureau, bank, insurer):
       flask --app run orgs create --code CODE --name NAME --type TYPE
  3. the townships and streets (a .xlsx or .csv file with the columns code and name):
       flask --app run townships import FILE
       flask --app run townships create --code CODE --name NAME
  4. the users (or in the browser, signed in as the administrator, under 人员 / People):
       flask --app run users create --username U --password '…' --role ROLE --org CODE
     ROLE: admin, finance_office, pboc, bureau (org: a bureau), advisor and liaison (org: a
     bank or insurer).
"""


def prepare(app: Flask, out: Callable[[str], None] = print) -> bool:
    """Migrate the database; when it is empty and the demo is allowed, load the demo data set.
    Returns whether the demo data set was loaded now."""
    from flask_migrate import upgrade

    from models import db

    from .audit import acting_as
    from .demo import database_is_empty, seed_demo

    with app.app_context():
        upgrade()
        if not (app.config["DEMO_DATA"] and database_is_empty()):
            return False
        out("Empty database: loading the demo data set …")
        with acting_as(label="demo"):
            out(seed_demo())
        db.session.commit()
        return True


def demo_logins_work(app: Flask) -> bool:
    """The demo is allowed and its administrator signs in with the demo password (so the demo
    data set is what is loaded, not a real city that happens to have a user called admin)."""
    from models import db

    from .demo import DEMO_LOGINS
    from .security import verify_password
    from .services.users import find_user

    if not app.config["DEMO_DATA"]:
        return False
    username, password, _role = DEMO_LOGINS[0]
    with app.app_context():
        admin = find_user(username)
        ok = bool(admin and admin.active and verify_password(admin, password))
        db.session.rollback()  # verify_password may have refreshed the hash: not worth a write
        return ok


def banner(app: Flask, url: str) -> str:
    """The text printed once the app is ready: the URL, then the demo logins when they work,
    or on a database without users what to do next."""
    from .demo import DEMO_LOGINS, database_is_empty

    lines = [f"\n  金融顾问团 case management is running at {url}\n"]
    with app.app_context():
        empty = database_is_empty()
    if empty:
        if app.config.get("PRODUCTION") and not app.config["DEMO_DATA"]:
            lines.append(
                "  No demo data under APP_CONFIG=production (DEMO_DATA=1 would load it).\n"
            )
        lines.append(NEXT_STEPS)
        lines.append(f"  Then sign in at {url} as the administrator.\n")
    elif demo_logins_work(app):
        lines.append("  Demo logins (username / password):")
        for username, password, role in DEMO_LOGINS:
            lines.append(f"    {role:<16} {username:<14} {password}")
        lines.append("")
    return "\n".join(lines)
