"""Accounts, roles and the one-time setup token."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
import zoneinfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import BooleanField, CharField, DateTimeField, IntegerField

from models.base import BaseModel, locked
from models.db import db, utcnow

ADMIN, OPERATOR, VIEWER = "admin", "operator", "viewer"
ROLES = (ADMIN, OPERATOR, VIEWER)
ROLE_RANK = {VIEWER: 0, OPERATOR: 1, ADMIN: 2}
ROLE_HELP = {
    ADMIN: "everything, including users and settings",
    OPERATOR: "run, cancel and restore backups, decide imports",
    VIEWER: "read only",
}
USERNAME_MAX_LENGTH = 32
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
SETUP_TOKEN_TTL = dt.timedelta(hours=1)

# Argon2id with argon2-cffi's RFC 9106 "low memory" defaults (64 MiB, 3 passes).
password_hasher = PasswordHasher()


class AccountError(ValueError):
    """A change to accounts that breaks a rule; the message is shown to the user."""


class LastAdminError(AccountError):
    def __init__(self) -> None:
        super().__init__("Cairn needs at least one active admin: make another user admin first.")


def normalize_username(raw: str) -> str:
    """The stored form of a username, or AccountError saying what is wrong with it."""
    username = raw.strip().lower()
    if not username:
        raise AccountError("Enter a username.")
    if len(username) > USERNAME_MAX_LENGTH:
        raise AccountError(f"Use at most {USERNAME_MAX_LENGTH} characters.")
    if not USERNAME_PATTERN.match(username):
        raise AccountError("Use letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return username


def check_password_policy(password: str, username: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AccountError(f"Use at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise AccountError(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
    if password.strip().lower() == username.lower():
        raise AccountError("The password cannot be the username.")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def check_timezone(name: str) -> str:
    # As jobs/engines/zones.py checks a profile's zone (models cannot import jobs): ZoneInfo
    # itself would open a 200 kB name as a file.
    if len(name) > 64 or name not in _zones():
        raise AccountError(f"Unknown time zone {name[:64]!r}.")
    return name


@functools.cache
def _dummy_hash() -> str:
    return password_hasher.hash(secrets.token_urlsafe(16))


def _burn_hash(password: str) -> None:
    try:
        password_hasher.verify(_dummy_hash(), password)
    except VerificationError:
        pass


class User(BaseModel):
    username = CharField(max_length=USERNAME_MAX_LENGTH, unique=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16)
    active = BooleanField(default=True)
    # Part of the session id: bumping it signs the user out everywhere.
    session_epoch = IntegerField(default=0)
    timezone = CharField(max_length=64, default="UTC")
    created_at = DateTimeField(default=utcnow)
    password_changed_at = DateTimeField(default=utcnow)
    last_login_at = DateTimeField(null=True)

    # flask-login's user protocol, without importing Flask into the model layer.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    @classmethod
    def by_session_id(cls, session_id: str) -> User | None:
        user_id, _, epoch = session_id.partition(":")
        if not (user_id.isdigit() and epoch.isdigit()):
            return None
        return cls.get_or_none((cls.id == int(user_id)) & (cls.session_epoch == int(epoch))
                               & cls.active)

    @classmethod
    def by_username(cls, username: str) -> User | None:
        return cls.get_or_none(cls.username == username.strip().lower())

    @classmethod
    def exists_any(cls) -> bool:
        return cls.select().exists()

    @classmethod
    def listing(cls):
        return cls.select().order_by(cls.username)

    @classmethod
    def create_account(cls, username: str, password: str, role: str,
                       timezone: str = "UTC", now: dt.datetime | None = None) -> User:
        username = normalize_username(username)
        check_password_policy(password, username)
        if role not in ROLES:
            raise AccountError(f"Unknown role {role!r}.")
        now = now or utcnow()
        with db.atomic():
            if cls.by_username(username):
                raise AccountError(f"There is already a user called {username}.")
            return cls.create(username=username, password_hash=password_hasher.hash(password),
                              role=role, timezone=check_timezone(timezone),
                              created_at=now, password_changed_at=now)

    @classmethod
    def authenticate(cls, username: str, password: str) -> User | None:
        """The user whose password this is (active or not), else None.

        An unknown name still costs one hash check, so response times do not tell which
        usernames exist.
        """
        user = cls.by_username(username)
        if user is None:
            _burn_hash(password)
            return None
        return user if user.verify_password(password) else None

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def verify_password(self, password: str) -> bool:
        try:
            password_hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if password_hasher.check_needs_rehash(self.password_hash):
            self.password_hash = password_hasher.hash(password)
            self.save(only=[User.password_hash])
        return True

    def set_password(self, password: str, now: dt.datetime | None = None) -> None:
        """New password; every existing session of this user ends."""
        check_password_policy(password, self.username)
        self.password_hash = password_hasher.hash(password)
        self.password_changed_at = now or utcnow()
        self.session_epoch += 1
        self.save(only=[User.password_hash, User.password_changed_at, User.session_epoch])

    def record_login(self, timezone: str | None, now: dt.datetime | None = None) -> None:
        self.last_login_at = now or utcnow()
        fields = [User.last_login_at]
        if timezone and timezone != self.timezone:
            try:
                self.timezone = check_timezone(timezone)
                fields.append(User.timezone)
            except AccountError:
                pass  # an odd browser zone leaves the stored one in place
        self.save(only=fields)

    def change_role(self, role: str) -> None:
        if role not in ROLES:
            raise AccountError(f"Unknown role {role!r}.")
        with db.atomic():
            if self.role == ADMIN and role != ADMIN:
                self._keep_another_admin()
            self.role = role
            self.save(only=[User.role])

    def set_active(self, active: bool) -> None:
        """Disable or enable; disabling ends every session of this user."""
        with db.atomic():
            if not active and self.role == ADMIN:
                self._keep_another_admin()
            self.active = active
            if not active:
                self.session_epoch += 1
            self.save(only=[User.active, User.session_epoch])

    def _keep_another_admin(self) -> None:
        # Locks the admin rows so two admins demoting each other at once cannot both succeed.
        others = locked(User.select(User.id).where(
            (User.role == ADMIN) & User.active & (User.id != self.id)))
        if not list(others):
            raise LastAdminError()


class SetupToken(BaseModel):
    """The secret in the one-time setup link; only its hash is stored."""

    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)

    @staticmethod
    def _hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, now: dt.datetime | None = None, ttl: dt.timedelta = SETUP_TOKEN_TTL) -> str:
        """A fresh token; earlier unused ones stop working."""
        now = now or utcnow()
        raw = secrets.token_urlsafe(32)
        with db.atomic():
            cls.delete().where(cls.used_at.is_null()).execute()
            cls.create(token_hash=cls._hash(raw), created_at=now, expires_at=now + ttl)
        return raw

    @classmethod
    def problem(cls, raw: str, now: dt.datetime | None = None) -> str | None:
        """Why this token cannot be used, or None when it can."""
        token = cls.get_or_none(cls.token_hash == cls._hash(raw or ""))
        if token is None:
            return "This setup link is not valid. Use the newest link Cairn printed."
        if token.used_at is not None:
            return "This setup link has already been used."
        if token.expires_at <= (now or utcnow()):
            return "This setup link has expired."
        return None

    @classmethod
    def redeem(cls, raw: str, now: dt.datetime) -> bool:
        """Mark the token used; False if it was unknown, used or expired (checked atomically)."""
        return bool(cls.update(used_at=now).where(
            (cls.token_hash == cls._hash(raw or "")) & cls.used_at.is_null()
            & (cls.expires_at > now)).execute())


def create_first_admin(token: str, username: str, password: str, timezone: str = "UTC",
                       now: dt.datetime | None = None) -> User:
    """Set-up: spend the token and create the first admin, both or neither."""
    now = now or utcnow()
    username = normalize_username(username)
    check_password_policy(password, username)
    with db.atomic():
        if User.exists_any():
            raise AccountError("Cairn is already set up. Log in instead.")
        if not SetupToken.redeem(token, now):
            raise AccountError(SetupToken.problem(token, now) or "This setup link is not valid.")
        return User.create_account(username, password, ADMIN, timezone, now)
