import datetime as dt

import pytest

from models import SetupToken, User
from models.user import AccountError, LastAdminError, create_first_admin

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 11, 22, 12, 0)


@pytest.fixture(autouse=True)
def _db(migrated):
    pass


def test_usernames_are_stored_lowercase_and_unique():
    user = User.create_account("  Ada ", PASSWORD, "admin")
    assert user.username == "ada"
    with pytest.raises(AccountError, match="already a user called ada"):
        User.create_account("ADA", PASSWORD, "viewer")
    assert User.select().count() == 1


@pytest.mark.parametrize("username, says", [
    ("", "Enter a username"),
    ("x" * 33, "at most 32"),
    ("ada lovelace", "letters, digits"),
    ("-ada", "starting with a letter"),
    ("ad<a>", "letters, digits"),
])
def test_malformed_usernames_are_refused(username, says):
    with pytest.raises(AccountError, match=says):
        User.create_account(username, PASSWORD, "viewer")
    assert User.select().count() == 0


@pytest.mark.parametrize("password, says", [
    ("short", "at least 10"),
    ("x" * 257, "at most 256"),
    ("Lovelace42", "cannot be the username"),
])
def test_weak_passwords_are_refused(password, says):
    with pytest.raises(AccountError, match=says):
        User.create_account("lovelace42", password, "viewer")


def test_an_unknown_role_is_refused():
    with pytest.raises(AccountError, match="Unknown role"):
        User.create_account("ada", PASSWORD, "root")


def test_passwords_are_stored_as_argon2id_hashes_and_verified():
    user = User.create_account("ada", PASSWORD, "admin")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.verify_password(PASSWORD)
    assert not user.verify_password(PASSWORD + "!")


def test_authenticate_answers_none_for_unknown_users_and_wrong_passwords():
    User.create_account("ada", PASSWORD, "admin")
    assert User.authenticate("ADA", PASSWORD).username == "ada"
    assert User.authenticate("ada", "wrong password") is None
    assert User.authenticate("nobody", PASSWORD) is None


def test_a_new_password_ends_every_existing_session():
    user = User.create_account("ada", PASSWORD, "admin")
    old_session = user.get_id()
    user.set_password("another long password")
    assert User.by_session_id(old_session) is None
    assert User.by_session_id(user.get_id()).id == user.id
    assert user.verify_password("another long password")


@pytest.mark.parametrize("session_id", ["", "abc", "1", "1:", ":1", "1:x", "99:0", "-1:0"])
def test_malformed_or_unknown_session_ids_load_nobody(session_id):
    User.create_account("ada", PASSWORD, "admin")
    assert User.by_session_id(session_id) is None


def test_disabling_a_user_ends_their_sessions_and_keeps_them_out():
    User.create_account("ada", PASSWORD, "admin")
    vera = User.create_account("vera", PASSWORD, "viewer")
    session = vera.get_id()
    vera.set_active(False)
    assert User.by_session_id(session) is None
    assert User.by_session_id(vera.get_id()) is None
    vera.set_active(True)
    assert User.by_session_id(vera.get_id()).username == "vera"


def test_the_last_active_admin_cannot_be_demoted_or_disabled():
    ada = User.create_account("ada", PASSWORD, "admin")
    with pytest.raises(LastAdminError):
        ada.change_role("viewer")
    with pytest.raises(LastAdminError):
        ada.set_active(False)
    ada = User.get_by_id(ada.id)
    assert (ada.role, ada.active) == ("admin", True)


def test_an_admin_can_step_down_once_another_admin_exists():
    ada = User.create_account("ada", PASSWORD, "admin")
    grace = User.create_account("grace", PASSWORD, "admin")
    grace.set_active(False)
    with pytest.raises(LastAdminError):  # a disabled admin does not count
        ada.change_role("operator")
    grace.set_active(True)
    ada.change_role("operator")
    assert User.get_by_id(ada.id).role == "operator"


def test_roles_rank_admin_over_operator_over_viewer():
    otto = User.create_account("otto", PASSWORD, "operator")
    assert otto.has_role("viewer") and otto.has_role("operator") and not otto.has_role("admin")


def test_login_records_the_browser_time_zone_and_ignores_odd_ones():
    user = User.create_account("ada", PASSWORD, "admin")
    user.record_login("Europe/Paris", now=NOW)
    user.record_login("Mars/Olympus_Mons", now=NOW)
    user = User.get_by_id(user.id)
    assert (user.timezone, user.last_login_at) == ("Europe/Paris", NOW)


def test_a_setup_token_works_once():
    token = SetupToken.issue(now=NOW)
    assert SetupToken.problem(token, now=NOW) is None
    assert SetupToken.redeem(token, NOW)
    assert not SetupToken.redeem(token, NOW)
    assert "already been used" in SetupToken.problem(token, now=NOW)


def test_a_setup_token_expires_after_an_hour():
    token = SetupToken.issue(now=NOW)
    later = NOW + dt.timedelta(hours=1)
    assert "expired" in SetupToken.problem(token, now=later)
    assert not SetupToken.redeem(token, later)


def test_a_new_setup_token_replaces_the_unused_one():
    first = SetupToken.issue(now=NOW)
    second = SetupToken.issue(now=NOW)
    assert "not valid" in SetupToken.problem(first, now=NOW)
    assert SetupToken.problem(second, now=NOW) is None


def test_only_the_token_hash_is_stored():
    token = SetupToken.issue(now=NOW)
    assert not SetupToken.select().where(SetupToken.token_hash == token).exists()


def test_setup_creates_the_first_admin_and_spends_the_token():
    token = SetupToken.issue(now=NOW)
    ada = create_first_admin(token, "Ada", PASSWORD, "Europe/Paris", now=NOW)
    assert (ada.username, ada.role, ada.timezone) == ("ada", "admin", "Europe/Paris")
    assert SetupToken.get().used_at == NOW


def test_setup_with_a_bad_token_writes_nothing():
    SetupToken.issue(now=NOW)
    with pytest.raises(AccountError, match="not valid"):
        create_first_admin("forged", "ada", PASSWORD, now=NOW)
    assert User.select().count() == 0


def test_setup_with_a_weak_password_keeps_the_token_usable():
    token = SetupToken.issue(now=NOW)
    with pytest.raises(AccountError):
        create_first_admin(token, "ada", "short", now=NOW)
    assert SetupToken.problem(token, now=NOW) is None
    assert User.select().count() == 0


def test_setup_is_closed_once_anyone_exists():
    token = SetupToken.issue(now=NOW)
    User.create_account("ada", PASSWORD, "admin")
    with pytest.raises(AccountError, match="already set up"):
        create_first_admin(token, "eve", PASSWORD, now=NOW)
    assert SetupToken.problem(token, now=NOW) is None
    assert User.select().count() == 1
