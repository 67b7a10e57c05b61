"""SQLAlchemy models, one module per aggregate. Imports nothing from advisors/ or views/."""

from .audit import AuditLog
from .base import Money, UTCDateTime, db, utcnow
from .calendar import WorkdayOverride
from .firm import SIZE_CLASSES, Enterprise
from .notification import Notification
from .org import ORG_TYPES, Organisation, Township
from .policy import FIRM_TYPES, PolicyTool
from .referral import (
    NEEDS,
    OPEN_STATUSES,
    OUTCOMES,
    STATUSES,
    Referral,
    ReferralBureau,
    ReferralEvent,
    ReferralRead,
    ReferralUpload,
)
from .user import (
    ROLE_ORG_TYPES,
    ROLES,
    AdvisorProfile,
    AdvisorSpecialty,
    ApiToken,
    FormDraft,
    LoginAttempt,
    User,
    UserSession,
)
from .visit import (
    FINANCING_STAGES,
    RISK_STATUSES,
    RISK_TYPES,
    STAGE_ORDER,
    VISIT_MODES,
    VISIT_ROLES,
    FeedbackLink,
    FinancingApplication,
    FinancingStep,
    RiskNote,
    RiskReport,
    Visit,
    VisitPolicy,
)

__all__ = [
    "FINANCING_STAGES",
    "RISK_STATUSES",
    "RISK_TYPES",
    "STAGE_ORDER",
    "VISIT_MODES",
    "VISIT_ROLES",
    "FeedbackLink",
    "FinancingApplication",
    "FinancingStep",
    "RiskNote",
    "RiskReport",
    "Visit",
    "VisitPolicy",
    "NEEDS",
    "OPEN_STATUSES",
    "OUTCOMES",
    "STATUSES",
    "Notification",
    "Referral",
    "ReferralBureau",
    "ReferralEvent",
    "ReferralRead",
    "ReferralUpload",
    "WorkdayOverride",
    "FIRM_TYPES",
    "ORG_TYPES",
    "ROLES",
    "ROLE_ORG_TYPES",
    "SIZE_CLASSES",
    "AdvisorProfile",
    "AdvisorSpecialty",
    "ApiToken",
    "AuditLog",
    "Enterprise",
    "FormDraft",
    "LoginAttempt",
    "Money",
    "Organisation",
    "PolicyTool",
    "Township",
    "UTCDateTime",
    "User",
    "UserSession",
    "db",
    "utcnow",
]
