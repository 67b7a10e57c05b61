"""People: users, advisor profiles, sign-in sessions, API tokens and login attempts."""

from sqlalchemy import func

from .base import TimestampMixin, UTCDateTime, db, utcnow

ROLES = ("admin", "finance_office", "pboc", "bureau", "advisor", "liaison")

# Which organisation type each role must belong to (None: no organisation required).
ROLE_ORG_TYPES = {
    "admin": None,
    "finance_office": ("finance_office",),
    "pboc": ("pboc",),
    "bureau": ("bureau",),
    "advisor": ("bank", "insurer"),
    "liaison": ("bank", "insurer"),
}

advisor_specialty = db.Table(
    "advisor_specialty",
    db.Column(
        "user_id", db.ForeignKey("advisor_profile.user_id", ondelete="CASCADE"), primary_key=True
    ),
    db.Column("industry", db.String(40), primary_key=True),
)

advisor_township = db.Table(
    "advisor_township",
    db.Column(
        "user_id", db.ForeignKey("advisor_profile.user_id", ondelete="CASCADE"), primary_key=True
    ),
    db.Column("township_id", db.ForeignKey("township.id", ondelete="CASCADE"), primary_key=True),
)


class User(TimestampMixin, db.Model):
    __tablename__ = "user_account"
    __audited__ = True
    __audit_exclude__ = ("password_hash",)

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(60), nullable=False, unique=True)
    display_name = db.Column(db.String(60), nullable=False)
    password_hash = db.Column(db.String(255), nullable=False)
    role = db.Column(db.String(20), nullable=False, index=True)
    org_id = db.Column(db.ForeignKey("organisation.id"), index=True)
    phone = db.Column(db.String(30))
    email = db.Column(db.String(120))
    locale = db.Column(db.String(10))
    active = db.Column(db.Boolean, nullable=False, default=True)
    password_changed_at = db.Column(UTCDateTime)
    # Set for a password an administrator gave: the user must choose their own at next sign-in.
    must_change_password = db.Column(
        db.Boolean, nullable=False, default=False, server_default=db.false()
    )
    version = db.Column(db.Integer, nullable=False, default=1)

    org = db.relationship("Organisation", lazy="joined", innerjoin=False)
    advisor_profile = db.relationship(
        "AdvisorProfile", back_populates="user", uselist=False, lazy="raise_on_sql"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint(
            "role IN ('admin', 'finance_office', 'pboc', 'bureau', 'advisor', 'liaison')",
            name="role",
        ),
        # Usernames are unique regardless of case (the service checks first, for the message).
        db.Index("uq_user_account_username_lower", func.lower(username), unique=True),
    )

    # Flask-Login protocol. The id Flask-Login keeps in the session is the sign-in session's
    # token, not the user id: revoking that row ends the session even for a copied cookie.
    session_token = None

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self):
        return self.session_token

    def __repr__(self):
        return f"<User {self.username} {self.role}>"


class AdvisorProfile(TimestampMixin, db.Model):
    __tablename__ = "advisor_profile"
    __audited__ = True
    __audit_collections__ = ("townships",)

    user_id = db.Column(db.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    title = db.Column(db.String(60))
    capacity = db.Column(db.Integer, nullable=False, default=15)
    accepting = db.Column(db.Boolean, nullable=False, default=True)
    note = db.Column(db.Text)
    version = db.Column(db.Integer, nullable=False, default=1)

    user = db.relationship("User", back_populates="advisor_profile", lazy="joined")
    townships = db.relationship("Township", secondary=advisor_township, lazy="selectin")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (db.CheckConstraint("capacity >= 0", name="capacity"),)

    specialty_rows = db.relationship(
        "AdvisorSpecialty", lazy="selectin", cascade="all, delete-orphan", viewonly=False
    )

    @property
    def specialties(self) -> list[str]:
        return sorted(s.industry for s in self.specialty_rows)


class AdvisorSpecialty(db.Model):
    __table__ = advisor_specialty
    __audited__ = True


class UserSession(db.Model):
    """One sign-in. Logout, password change and deactivation revoke rows here."""

    __tablename__ = "user_session"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(
        db.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    ip = db.Column(db.String(64))
    user_agent = db.Column(db.String(255))
    revoked_at = db.Column(UTCDateTime)
    revoked_reason = db.Column(db.String(40))

    user = db.relationship("User", lazy="joined")


class ApiToken(db.Model):
    """A bearer token for the JSON API. Only a SHA-256 of the secret is kept."""

    __tablename__ = "api_token"
    __audited__ = True
    __audit_exclude__ = ("token_hash",)

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(
        db.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name = db.Column(db.String(60), nullable=False)
    prefix = db.Column(db.String(12), nullable=False)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(UTCDateTime)
    revoked_at = db.Column(UTCDateTime)

    user = db.relationship("User", lazy="joined")


class LoginAttempt(db.Model):
    """Sign-ins, failed and successful: throttling per account and per IP, shared by workers."""

    __tablename__ = "login_attempt"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(60), nullable=False)
    ip = db.Column(db.String(64), nullable=False)
    at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    success = db.Column(db.Boolean, nullable=False)
    # sign_in (the sign-in form) | password (the current-password check of a password change)
    kind = db.Column(db.String(10), nullable=False, default="sign_in", server_default="sign_in")
    # Set when an administrator cleared the throttle: the failure no longer counts.
    cleared_at = db.Column(UTCDateTime)

    __table_args__ = (
        db.Index("ix_login_attempt_username_at", "username", "at"),
        db.Index("ix_login_attempt_ip_at", "ip", "at"),
    )


class FormDraft(db.Model):
    """Input of a form posted after its session ended, kept server-side (a long text would not
    fit in the cookie) until the user signs in again and the form is re-shown filled in."""

    __tablename__ = "form_draft"

    id = db.Column(db.Integer, primary_key=True)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    path = db.Column(db.String(255), nullable=False)
    data = db.Column(db.JSON, nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow, index=True)
