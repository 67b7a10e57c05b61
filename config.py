"""Configuration classes. Select with ``create_app(config)``; the environment fills in the rest."""

import contextlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


class ConfigurationError(RuntimeError):
    """A setting the app cannot start without. ``create_app`` turns it into a one-line message
    on stderr and a non-zero exit (python run.py, flask --app run …, gunicorn run:app)."""


def _secret_key(production: bool = False) -> str:
    """SECRET_KEY from the environment. Production refuses to start without it; development
    generates one once and keeps it in instance/secret_key."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    if production:
        raise ConfigurationError(
            "SECRET_KEY is not set: APP_CONFIG=production needs a long random key that stays the "
            "same across restarts (make one with: python -c 'import secrets; "
            "print(secrets.token_hex(32))')"
        )
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
    if not key:
        _write_key_once(path)
        key = path.read_text().strip()
    return key


def _write_key_once(path: Path) -> None:
    """Create ``path`` with a new key, race-free: the key is written in full to a private
    temporary file (mode 0600) that is then hard-linked into place, which fails if the file
    exists. Of several processes starting at once, the first one's key is the one all read."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            if not path.read_text().strip():  # left empty by an older, interrupted write
                os.replace(tmp, path)
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _demo_data(production: bool) -> bool:
    """DEMO_DATA: in development on unless 0; in production off unless 1, set explicitly."""
    value = os.environ.get("DEMO_DATA", "").strip().lower()
    if production:
        return value in ("1", "true", "yes", "on")
    return value not in ("0", "false", "no", "off")


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
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}  # completed by engine_options()
    # Database timeouts, so that a database that is down or silent costs a request seconds and
    # a 503, not a worker killed by gunicorn's 30 s timeout. PostgreSQL: give up connecting
    # after DB_CONNECT_TIMEOUT s; cancel a statement after DB_STATEMENT_TIMEOUT_MS (0: never);
    # the scheduler's jobs allow JOB_STATEMENT_TIMEOUT_MS in their own transactions; end a
    # session idle inside a transaction for DB_IDLE_TRANSACTION_TIMEOUT_MS (its client is
    # gone: its locks are freed); TCP keepalives, both ways, drop a connection whose other end
    # stopped answering within about DB_TCP_TIMEOUT_MS. 0 turns a timeout off. Both: wait at
    # most DB_POOL_TIMEOUT s for a free pooled connection.
    # SQLite waits up to 10 s for another writer (busy_timeout, advisors/__init__.py).
    DB_CONNECT_TIMEOUT = int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))
    DB_STATEMENT_TIMEOUT_MS = int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "20000"))
    JOB_STATEMENT_TIMEOUT_MS = int(os.environ.get("JOB_STATEMENT_TIMEOUT_MS", "1800000"))
    DB_IDLE_TRANSACTION_TIMEOUT_MS = int(os.environ.get("DB_IDLE_TRANSACTION_TIMEOUT_MS", "60000"))
    DB_TCP_TIMEOUT_MS = int(os.environ.get("DB_TCP_TIMEOUT_MS", "15000"))
    DB_POOL_TIMEOUT = int(os.environ.get("DB_POOL_TIMEOUT", "10"))
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

    # How many reverse proxies in front of the app set X-Forwarded-For (and -Proto): the client
    # address (sign-in throttling, audit trail, sessions) is read through that many hops and no
    # further. 0: the direct peer is the client and forwarded headers are ignored.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))

    # Sign-in throttling (advisors/throttling.py explains the rules): growing delays, never a
    # hard lock of the right password. Failures count within the window.
    LOGIN_THROTTLE_WINDOW = timedelta(hours=1)
    # Per (address, account): free failures, then 15 s, 30 s, 1 min … up to 15 min.
    LOGIN_FREE_FAILURES = 5
    LOGIN_DELAY_FIRST = timedelta(seconds=15)
    LOGIN_DELAY_MAX = timedelta(minutes=15)
    # Per account, from any address: then 5 s, 10 s … up to a minute.
    LOGIN_ACCOUNT_FREE_FAILURES = 10
    LOGIN_ACCOUNT_DELAY_FIRST = timedelta(seconds=5)
    LOGIN_ACCOUNT_DELAY_MAX = timedelta(minutes=1)
    # Per address, for any account: then 15 s … up to 15 min.
    LOGIN_ADDRESS_FREE_FAILURES = 30
    LOGIN_ADDRESS_DELAY_FIRST = timedelta(seconds=15)
    LOGIN_ADDRESS_DELAY_MAX = timedelta(minutes=15)
    # An address the account signed in from within this many days is exempt from the account
    # and address delays.
    LOGIN_KNOWN_ADDRESS_DAYS = 30

    # Referrals: first contact is due this many working days after assignment.
    FIRST_CONTACT_WORKING_DAYS = int(os.environ.get("FIRST_CONTACT_WORKING_DAYS", "5"))
    # Days after logging a visit during which its author may still edit it; afterwards only a
    # finance-office correction (with a reason) changes it.
    VISIT_EDIT_DAYS = int(os.environ.get("VISIT_EDIT_DAYS", "7"))
    # How long a firm's one-time feedback link stays valid.
    FEEDBACK_LINK_DAYS = int(os.environ.get("FEEDBACK_LINK_DAYS", "14"))
    # Where the public reaches the app: scheme, host and any path it is published under
    # (https://jrb.example.gov.cn/advisors). Feedback links and their QR codes are built on it:
    # staff use the intranet address, the firm opens the link from WeChat. Unset: the address
    # of the request that makes the link (development only; the admin home page warns).
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").strip()
    # The score below which the ranking notice names an advisor (or an institution, by its
    # average) with the gap in points.
    ASSESSMENT_TARGET_SCORE = int(os.environ.get("ASSESSMENT_TARGET_SCORE", "60"))
    # The notice (通报) as an official document: its issuer (发文机关; unset: the name of the
    # finance-office organisation), the prefix of its document number (江金办 gives
    # 江金办〔2026〕12号) and the CJK TrueType font its PDF embeds (unset: Debian's
    # fonts-wqy-zenhei or fonts-wqy-microhei, or AR PL UMing).
    NOTICE_ISSUER = os.environ.get("NOTICE_ISSUER", "").strip()
    NOTICE_DOC_PREFIX = os.environ.get("NOTICE_DOC_PREFIX", "").strip()
    NOTICE_FONT_PATH = os.environ.get("NOTICE_FONT_PATH", "").strip()
    # Uploads of referral lists: rows per file.
    MAX_UPLOAD_ROWS = 20000
    # A list that ends within this many data rows (and this many bytes of sheet XML or CSV
    # text) is imported in the upload request; a longer one is queued for the scheduler
    # process, and its page shows the progress (advisors/services/upload_queue.py).
    UPLOAD_INLINE_ROWS = int(os.environ.get("UPLOAD_INLINE_ROWS", "500"))
    UPLOAD_INLINE_BYTES = 4 * 1024 * 1024
    # How often the scheduler looks for queued uploads.
    UPLOAD_QUEUE_SECONDS = int(os.environ.get("UPLOAD_QUEUE_SECONDS", "5"))

    # Scheduler: python run.py turns it on; the WSGI app leaves it off.
    SCHEDULER = os.environ.get("SCHEDULER", "off")
    # Whether the demo data set may be loaded: filled by resolve() from DEMO_DATA (see
    # _demo_data). PRODUCTION: refuse to start without SECRET_KEY, no demo unless asked for.
    DEMO_DATA = None
    PRODUCTION = False


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    PRODUCTION = True
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
        config = os.environ.get("APP_CONFIG", "").strip().lower() or "development"
        if config not in names:
            # Never fall back to development (a generated key, demo data) on a typo.
            raise ConfigurationError(
                f"APP_CONFIG must be one of {', '.join(names)}, not {config!r}"
            )
    if isinstance(config, str):
        config = names[config]
    if isinstance(config, dict):
        base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
        base.update(config)
        values = base
    else:
        values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    production = bool(values.get("PRODUCTION"))
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = _secret_key(production)
    if values.get("DEMO_DATA") is None:
        values["DEMO_DATA"] = _demo_data(production)
    if not values.get("SQLALCHEMY_DATABASE_URI"):
        values["SQLALCHEMY_DATABASE_URI"] = _database_url()
    values["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(values)
    return values


def engine_options(values: dict) -> dict:
    """SQLALCHEMY_ENGINE_OPTIONS completed with the timeouts of ``values`` for its database
    (options given explicitly win)."""
    options = dict(values.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    url = str(values.get("SQLALCHEMY_DATABASE_URI") or "")
    if url.startswith("postgresql"):
        tcp_ms = int(values.get("DB_TCP_TIMEOUT_MS", 15000))
        connect_args = {
            "connect_timeout": max(int(values.get("DB_CONNECT_TIMEOUT", 5)), 2),
            # Probe an idle connection after a third of the TCP timeout, then every sixth;
            # unanswered probes or unacknowledged data drop it after the TCP timeout.
            "keepalives": 1,
            "keepalives_idle": max(tcp_ms // 3000, 1),
            "keepalives_interval": max(tcp_ms // 6000, 1),
            "keepalives_count": 3,
            "tcp_user_timeout": tcp_ms,
        }
        # The server's side: cancel a statement after the statement timeout; end a session
        # left idle inside a transaction too long (its client went away mid-work: its locks
        # are released); probe the client like the client probes the server, so a client
        # machine that went down loses its session (and its locks) within seconds too.
        settings = {
            "statement_timeout": max(int(values.get("DB_STATEMENT_TIMEOUT_MS", 0)), 0),
            "idle_in_transaction_session_timeout": max(
                int(values.get("DB_IDLE_TRANSACTION_TIMEOUT_MS", 0)), 0
            ),
            "tcp_keepalives_idle": connect_args["keepalives_idle"],
            "tcp_keepalives_interval": connect_args["keepalives_interval"],
            "tcp_keepalives_count": connect_args["keepalives_count"],
        }
        connect_args["options"] = " ".join(f"-c {k}={v}" for k, v in settings.items())
        options["connect_args"] = {**connect_args, **options.get("connect_args", {})}
        options.setdefault("pool_timeout", int(values.get("DB_POOL_TIMEOUT", 10)))
    elif url.startswith("sqlite") and url not in ("sqlite://", "sqlite:///:memory:"):
        options.setdefault("pool_timeout", int(values.get("DB_POOL_TIMEOUT", 10)))
    return options
