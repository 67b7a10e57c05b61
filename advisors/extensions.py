"""Extension objects, created unbound so models, services and views import them without cycles."""

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from models import db

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
bootstrap = Bootstrap5()

__all__ = ["babel", "bootstrap", "csrf", "db", "login_manager", "migrate"]
