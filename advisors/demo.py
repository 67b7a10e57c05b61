"""The demo data set (being written)."""

DEMO_LOGINS: list[tuple[str, str, str]] = []


def database_is_empty() -> bool:
    from sqlalchemy import func, select

    from models import User, db

    return not db.session.scalar(select(func.count()).select_from(User))


def seed_demo() -> str:
    raise RuntimeError("demo data set not written yet")
