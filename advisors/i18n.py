"""Languages (zh-CN first, English available), time zone and display filters."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, session
from flask_babel import format_decimal, get_locale
from flask_login import current_user

from .extensions import babel

SHANGHAI = ZoneInfo("Asia/Shanghai")


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang") if request else None
    if chosen in languages:
        return chosen
    user = current_user if request else None
    if user is not None and getattr(user, "is_authenticated", False) and user.locale in languages:
        return user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def local(dt: datetime | None) -> datetime | None:
    """A stored UTC timestamp in Asia/Shanghai."""
    if dt is None:
        return None
    return dt.astimezone(SHANGHAI)


def fmt_datetime(dt: datetime | None, seconds: bool = False) -> str:
    if dt is None:
        return ""
    return local(dt).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_date(d: date | datetime | None) -> str:
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = local(d).date()
    return d.isoformat()


def fmt_wan(value: Decimal | None) -> str:
    """万元 with thousands separators, two decimals at least, never through float."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.00####")


def current_locale() -> str:
    """'zh_CN' or 'en' (Babel would say zh_Hans_CN)."""
    locale = get_locale()
    return "zh_CN" if locale is None or locale.language == "zh" else "en"


# The catalogue lives in translations/zh/: Babel turns "zh_CN" into zh_Hans_CN, whose gettext
# fallbacks include the bare language "zh" but never "zh_CN".


def init_i18n(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(app.root_path + "/../translations"),
    )
    app.jinja_env.filters["datetime"] = fmt_datetime
    app.jinja_env.filters["date"] = fmt_date
    app.jinja_env.filters["wan"] = fmt_wan
    app.jinja_env.globals["current_locale"] = current_locale
