"""The one ``db`` object, its naming convention, and the column types every aggregate shares."""

from datetime import UTC, datetime
from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, DateTime, MetaData, types

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
_TWO_PLACES = Decimal("0.00")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(types.TypeDecorator):
    """Timestamps are stored as naive UTC and always come back timezone-aware (UTC).

    SQLite has no timezone type and PostgreSQL's ``timestamptz`` would convert on the way in
    and out by the session time zone; storing naive UTC behaves the same on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Money(types.TypeDecorator):
    """An amount in 万元 as ``Decimal``, stored exactly as an integer count of 分 (0.000001 万元).

    ``Numeric`` is exact on PostgreSQL but SQLite keeps it as a float, so sums would drift.
    An integer of 分 is exact on both, and SUM() over it stays exact in SQL.
    """

    impl = BigInteger
    cache_ok = True
    SCALE = Decimal(1_000_000)  # 1 万元 = 10,000 元 = 1,000,000 分

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, not float")
        return int((Decimal(value) * self.SCALE).to_integral_value())

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        # Exact: a shift of the decimal point, then at least two decimals ("12.50", "0.833333").
        return Decimal(int(value)).scaleb(-6).normalize() + _TWO_PLACES

    @property
    def python_type(self):
        return Decimal


class Points(types.TypeDecorator):
    """Assessment points as ``Decimal`` with two decimals, stored exactly as an integer count of
    hundredths (the same reason as :class:`Money`: SQLite keeps ``Numeric`` as a float)."""

    impl = BigInteger
    cache_ok = True
    SCALE = Decimal(100)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("points must be Decimal, not float")
        return int((Decimal(value) * self.SCALE).to_integral_value())

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-2)  # exact: "12.50"

    @property
    def python_type(self):
        return Decimal


class _ScaledDecimal(types.TypeDecorator):
    """A ``Decimal`` with a fixed number of places, stored exactly as an integer count of its
    smallest unit (``PLACES`` decimals), for the reason :class:`Money` gives."""

    impl = BigInteger
    cache_ok = True
    PLACES = 2
    WHAT = "value"

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"{self.WHAT} must be Decimal, not float")
        return int(Decimal(value).scaleb(self.PLACES).to_integral_value())

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.PLACES)

    @property
    def python_type(self):
        return Decimal


class Percent(_ScaledDecimal):
    """A percentage (or percentage points) with two decimals: "8.50" is 8.5 %, stored as 850."""

    cache_ok = True
    PLACES = 2
    WHAT = "percent"


class Figure(_ScaledDecimal):
    """An institution's reported figure with up to four decimals (亿元; a count is a whole
    number): "1234.5678" is stored as 12345678."""

    cache_ok = True
    PLACES = 4
    WHAT = "figure"


class TimestampMixin:
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = db.Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
