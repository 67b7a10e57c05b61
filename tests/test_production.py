"""Safe by default: production refuses to start without SECRET_KEY and never loads the demo
unless DEMO_DATA=1; development keeps its generated key (written race-free); ``python run.py``
prints the demo logins only while they work, and on a database without users what to do next."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

import config
from advisors import create_app, startup
from advisors.demo import DEMO_PASSWORD
from models import User, db

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = "SECRET_KEY is not set"


def _env(tmp_path, **values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEMO_DATA")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'start.db'}",
            "SCHEDULER": "off",
            "APP_CONFIG": "production",
        }
    )
    env.update(values)
    return env


def _run(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# ------------------------------------------------------------------ SECRET_KEY
@pytest.mark.parametrize(
    "args",
    [
        [sys.executable, "run.py"],
        [sys.executable, "-m", "flask", "--app", "run", "db", "upgrade"],
    ],
    ids=["python run.py", "flask --app run"],
)
def test_production_without_secret_key_exits_with_one_line(tmp_path, args):
    done = _run(args, _env(tmp_path))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert MESSAGE in lines[0]
    assert not (tmp_path / "start.db").exists()  # stopped before touching the database


def test_gunicorn_stops_instead_of_restarting_workers(tmp_path):
    pytest.importorskip("gunicorn")
    args = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:0"]
    args += ["--no-control-socket", "run:app"]
    done = _run(args, _env(tmp_path), timeout=60)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if MESSAGE in line]
    assert ours and all(line.startswith("error: ") for line in ours)


def test_unknown_app_config_is_refused(monkeypatch):
    monkeypatch.setenv("APP_CONFIG", "prod")
    with pytest.raises(config.ConfigurationError, match="APP_CONFIG"):
        config.resolve(None)


def test_production_never_writes_a_key_file(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigurationError):
        config.resolve("production")
    with pytest.raises(SystemExit) as stopped:
        create_app("production")
    assert stopped.value.code == 4
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    assert config.resolve("production")["SECRET_KEY"] == "k" * 64
    assert list(tmp_path.iterdir()) == []


def _key_in(directory: str) -> str:
    os.environ.pop("SECRET_KEY", None)
    config.INSTANCE_DIR = Path(directory)
    return config._secret_key()


def test_development_key_is_generated_once_race_free(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_key_in, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary files left
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert _key_in(str(tmp_path)) == keys[0]  # kept


# ------------------------------------------------------------------ DEMO_DATA
@pytest.mark.parametrize(
    ("production", "value", "expected"),
    [
        (False, None, True),
        (False, "1", True),
        (False, "0", False),
        (True, None, False),
        (True, "", False),
        (True, "yes-please", False),
        (True, "0", False),
        (True, "1", True),
    ],
)
def test_demo_data_setting(monkeypatch, production, value, expected):
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    if value is None:
        monkeypatch.delenv("DEMO_DATA", raising=False)
    else:
        monkeypatch.setenv("DEMO_DATA", value)
    name = "production" if production else "development"
    values = config.resolve(name)
    assert values["DEMO_DATA"] is expected
    assert values["PRODUCTION"] is production


def _app(url: str, monkeypatch, demo: str | None):
    if demo is None:
        monkeypatch.delenv("DEMO_DATA", raising=False)
    else:
        monkeypatch.setenv("DEMO_DATA", demo)
    # The test settings (fast hashing), but production's rules for the demo.
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "PRODUCTION": True, "DEMO_DATA": None})


def _users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def _fake_seed():
    """The demo's administrator only: what decides whether the logins are shown."""
    from advisors.services.users import create_user

    create_user(username="admin", password=DEMO_PASSWORD, role="admin", display_name="系统管理员")
    return "demo loaded"


def test_production_on_an_empty_database_loads_no_demo(bare_url, monkeypatch):
    app = _app(bare_url, monkeypatch, demo=None)
    try:
        printed = []
        assert startup.prepare(app, out=printed.append) is False
        assert printed == [] and _users(app) == 0
        text = startup.banner(app, "http://127.0.0.1:5000")
        assert "http://127.0.0.1:5000" in text
        assert "DEMO_DATA=1" in text
        for command in (
            "flask --app run users create --username admin",
            "--role admin",
            "flask --app run orgs create --code",
            "flask --app run townships import FILE",
            "flask --app run townships create --code CODE --name NAME",
            "--role ROLE --org CODE",
        ):
            assert command in text, command
        assert DEMO_PASSWORD not in text and "Demo logins" not in text
        # and the demo seed refuses, on the CLI too
        result = app.test_cli_runner().invoke(args=["demo", "seed"])
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1
        assert _users(app) == 0
    finally:
        with app.app_context():
            db.engine.dispose()


def test_production_loads_the_demo_only_with_demo_data_1(bare_url, monkeypatch):
    monkeypatch.setattr("advisors.demo.seed_demo", _fake_seed)
    app = _app(bare_url, monkeypatch, demo="1")
    try:
        printed = []
        assert startup.prepare(app, out=printed.append) is True
        assert printed[-1] == "demo loaded" and _users(app) == 1
        text = startup.banner(app, "http://127.0.0.1:5000")
        assert "Demo logins" in text and DEMO_PASSWORD in text
        assert "users create" not in text
        # the same database without DEMO_DATA=1: the URL only
        app.config["DEMO_DATA"] = False
        text = startup.banner(app, "http://127.0.0.1:5000")
        assert "http://127.0.0.1:5000" in text
        assert DEMO_PASSWORD not in text and "users create" not in text
    finally:
        with app.app_context():
            db.engine.dispose()


def test_logins_are_not_shown_once_the_demo_password_is_gone(app, make):
    make.user("admin", username="admin", password="A-Real-City-Admin-1")
    app.config["DEMO_DATA"] = True
    try:
        text = startup.banner(app, "http://127.0.0.1:5000")
    finally:
        app.config["DEMO_DATA"] = False
    assert DEMO_PASSWORD not in text and "users create" not in text


def test_run_py_without_demo_prints_next_steps(tmp_path):
    """``DEMO_DATA=0 python run.py`` on an empty database, end to end (serving stubbed out)."""
    code = "import run\nrun.app.run = lambda **kwargs: print('serving')\nrun.main()\n"
    env = _env(tmp_path, DEMO_DATA="0", SECRET_KEY="k" * 64, APP_CONFIG="development")
    done = _run([sys.executable, "-c", code], env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "http://127.0.0.1:5000" in out
    assert "flask --app run users create --username admin" in out
    assert "flask --app run townships import FILE" in out
    assert DEMO_PASSWORD not in out and "Demo logins" not in out
    assert out.strip().endswith("serving")
