"""Configuration classes. Select with ``create_app(config)``; the environment fills in the rest."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _secret_key() -> str:
    """SECRET_KEY from the environment; for development, generated once and kept under instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Hosting platforms hand out postgres:// URLs; we use psycopg 3.
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    INSTANCE_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'advisors.db'}"


class Config:
    SECRET_KEY = None  # filled lazily by create_app via _secret_key()
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_RECORD_QUERIES = False

    # i18n
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_CN", "en")
    TIMEZONE = "Asia/Shanghai"

    # Bootstrap served from the package, never from a CDN.
    BOOTSTRAP_SERVE_LOCAL = True

    # Sessions and cookies
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    # CSRF is enforced by the access gate (views/_http.py) after sign-in is checked.
    WTF_CSRF_CHECK_DEFAULT = False

    # Uploads: 10 MB is ample for a 10,000-row spreadsheet.
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024

    # Login throttling: failures allowed within the window before a lock-out.
    LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
    LOGIN_MAX_FAILURES_PER_IP = 20
    LOGIN_THROTTLE_WINDOW = timedelta(minutes=15)

    # Referrals: first contact is due this many working days after assignment.
    FIRST_CONTACT_WORKING_DAYS = int(os.environ.get("FIRST_CONTACT_WORKING_DAYS", "5"))
    # Days after logging a visit during which its author may still edit it; afterwards only a
    # finance-office correction (with a reason) changes it.
    VISIT_EDIT_DAYS = int(os.environ.get("VISIT_EDIT_DAYS", "7"))
    # How long a firm's one-time feedback link stays valid.
    FEEDBACK_LINK_DAYS = int(os.environ.get("FEEDBACK_LINK_DAYS", "14"))
    # The score below which the ranking notice names an advisor (or an institution, by its
    # average) with the gap in points.
    ASSESSMENT_TARGET_SCORE = int(os.environ.get("ASSESSMENT_TARGET_SCORE", "60"))
    # Uploads of referral lists: rows per file.
    MAX_UPLOAD_ROWS = 20000

    # Scheduler: python run.py turns it on; the WSGI app leaves it off.
    SCHEDULER = os.environ.get("SCHEDULER", "off")
    DEMO_DATA = os.environ.get("DEMO_DATA", "1") != "0"


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105 (tests only)
    WTF_CSRF_ENABLED = True
    SCHEDULER = "off"
    DEMO_DATA = False
    # Argon2 at full strength would make the suite crawl; tests use cheap parameters.
    PASSWORD_HASH_FAST = True


def resolve(config) -> dict:
    """Turn a config class, name or mapping into a plain dict, with the lazy values filled."""
    names = {
        "development": DevelopmentConfig,
        "production": ProductionConfig,
        "testing": TestingConfig,
    }
    if config is None:
        config = names.get(os.environ.get("APP_CONFIG", "development"), DevelopmentConfig)
    if isinstance(config, str):
        config = names[config]
    if isinstance(config, dict):
        base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
        base.update(config)
        values = base
    else:
        values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = _secret_key()
    if not values.get("SQLALCHEMY_DATABASE_URI"):
        values["SQLALCHEMY_DATABASE_URI"] = _database_url()
    return values
