"""Entry point.

* ``python run.py`` — the embedded default: migrate the database, seed the demo data set when the
  database is empty (unless DEMO_DATA=0), start the scheduler in-process, serve on 127.0.0.1:PORT.
* ``gunicorn -w 4 run:app`` — the WSGI app; never starts the scheduler (run exactly one
  ``flask --app run scheduler run`` beside it).
"""

import os

from advisors import create_app

app = create_app()


def main() -> None:
    from flask_migrate import upgrade

    from advisors.audit import acting_as
    from advisors.demo import DEMO_LOGINS, database_is_empty, seed_demo
    from advisors.scheduler import start_background
    from models import db

    port = int(os.environ.get("PORT", "5000"))
    with app.app_context():
        upgrade()
        if os.environ.get("DEMO_DATA", "1") != "0" and database_is_empty():
            print("Empty database: loading the demo data set …", flush=True)
            with acting_as(label="demo"):
                print(seed_demo(), flush=True)
            db.session.commit()
        show_logins = (
            db.session.get_bind().url.drivername.startswith("sqlite")
            or os.environ.get("DEMO_DATA", "1") != "0"
        )
    if os.environ.get("SCHEDULER", "on") == "on":
        start_background(app)
        print("Scheduler: running in-process.", flush=True)
    url = f"http://127.0.0.1:{port}"
    print(f"\n  金融顾问团 case management is running at {url}\n", flush=True)
    if show_logins:
        print("  Demo logins (username / password):", flush=True)
        for username, password, role in DEMO_LOGINS:
            print(f"    {role:<16} {username:<14} {password}", flush=True)
        print(flush=True)
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
