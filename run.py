"""Entry point.

* ``python run.py`` — the embedded default: migrate the database, seed the demo data set when the
  database is empty and the demo is allowed (development: unless DEMO_DATA=0; production: only
  with DEMO_DATA=1), start the scheduler in-process, serve on 127.0.0.1:PORT. It prints the URL
  and the demo logins, or on a database without users the commands that start a real city.
* ``gunicorn -w 4 run:app`` — the WSGI app; never starts the scheduler (run exactly one
  ``flask --app run scheduler run`` beside it).

Under APP_CONFIG=production the app refuses to start without SECRET_KEY (config.py).
"""

import os

from advisors import create_app

app = create_app()


def main() -> None:
    from advisors.scheduler import start_background
    from advisors.startup import banner, prepare

    port = int(os.environ.get("PORT", "5000"))
    prepare(app, out=lambda text: print(text, flush=True))
    if os.environ.get("SCHEDULER", "on") == "on":
        start_background(app)
        print("Scheduler: running in-process.", flush=True)
    print(banner(app, f"http://127.0.0.1:{port}"), flush=True)
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
