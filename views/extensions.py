"""Flask extensions shared by the blueprints; wired to the app in views.init_app()."""

from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_sock import Sock
from flask_wtf import CSRFProtect


def client_address() -> str:
    # ProxyFix (CAIRN_TRUSTED_PROXIES) has already put the real client here when proxied.
    return request.remote_addr or "unknown"


login_manager = LoginManager()
csrf = CSRFProtect()
sock = Sock()
limiter = Limiter(key_func=client_address)
