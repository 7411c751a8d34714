"""Lockout after repeated failed logins (django-axes): 100 wrong passwords in a row were
once all answered "wrong password" and the right one then logged in. Now the fifth
failure of a username from an address locks that username out from that address, the
right password included, for the cool-off (15 minutes); a page says so and until when;
an administrator can unlock it sooner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.django_admin.conftest import text, unique

PASSWORD = "a-long-test-password-42"
# Hashing with Django's default (PBKDF2, a million rounds) takes half a second a try;
# the lockout does not depend on the hasher.
FAST_HASHING = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
ELSEWHERE = "192.0.2.7"  # another client address (TEST-NET-1: documentation only)


@pytest.fixture(autouse=True)
def fast_hashing() -> Iterator[None]:
    """Cheap password hashes for the many logins of these tests."""
    with FAST_HASHING:
        yield


def new_user() -> Any:
    """A user with a known password, nobody's failures on record."""
    user = get_user_model().objects.create_user(username=unique("locky"), password=PASSWORD)
    return user


def log_in(client: Client, username: str, password: str, **extra: Any) -> Any:
    """Post the login form."""
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def logged_in(client: Client) -> bool:
    """Whether the browser holds a logged-in session."""
    return "_auth_user_id" in client.session


def fail(client: Client, username: str, times: int, **extra: Any) -> list[Any]:
    """`times` logins with a wrong password; the answers."""
    return [log_in(client, username, f"wrong-{n}", **extra) for n in range(times)]


def test_the_settings_are_five_failures_fifteen_minutes_per_username_and_address() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one() -> None:
    user, browser = new_user(), Client()

    # Given four wrong passwords: each is told so
    for answer in fail(browser, user.username, 4):
        assert answer.status_code == 200 and "enter a correct username" in text(answer)
    # When the fifth is wrong too, the account is locked from this address
    fifth = fail(browser, user.username, 1)[0]
    assert fifth.status_code == 429 and "Account locked" in text(fifth)

    # Then the right password is refused, with a page saying why and for how long
    right = log_in(browser, user.username, PASSWORD)
    page = text(right)
    assert right.status_code == 429 and not logged_in(browser)
    assert f"The account {user.username} is locked" in page
    assert "after 5 failed logins" in page
    assert "15 minutes after the last failed login" in page
    assert "in 15 minutes" in page
    assert f"axes_reset_username {user.username}" in page
    assert browser.get("/algorithms/").status_code == 302  # still sent to log in


def test_after_the_cool_off_the_right_password_logs_in() -> None:
    user, browser = new_user(), Client()
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=2)):
        fail(browser, user.username, 5)
        assert log_in(browser, user.username, PASSWORD).status_code == 429
        time.sleep(2.2)
        # The cool-off is over: the lock ended by itself
        response = log_in(browser, user.username, PASSWORD)
    assert response.status_code == 302 and logged_in(browser)


def test_tries_while_locked_do_not_make_the_lock_longer() -> None:
    user, browser = new_user(), Client()
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=3)):
        fail(browser, user.username, 5)
        time.sleep(1.5)
        fail(browser, user.username, 3)  # refused, not counted
        time.sleep(1.7)
        response = log_in(browser, user.username, PASSWORD)
    assert response.status_code == 302 and logged_in(browser)


def test_the_lock_holds_for_that_address_only() -> None:
    # Someone guessing from elsewhere cannot lock the real user out
    user = new_user()
    fail(Client(), user.username, 5)
    response = log_in(Client(), user.username, PASSWORD, REMOTE_ADDR=ELSEWHERE)
    assert response.status_code == 302


def test_the_user_admin_login_is_locked_too() -> None:
    user = new_user()
    user.is_staff = True
    user.save()
    fail(Client(), user.username, 5)
    response = Client().post(
        "/users/login/", {"username": user.username, "password": PASSWORD, "next": "/users/"}
    )
    assert response.status_code == 429 and "Account locked" in text(response)


def test_an_administrator_unlocks_with_a_command() -> None:
    user, browser = new_user(), Client()
    fail(browser, user.username, 5)
    assert log_in(browser, user.username, PASSWORD).status_code == 429

    call_command("axes_reset_username", user.username, verbosity=0)

    assert log_in(browser, user.username, PASSWORD).status_code == 302


def test_a_successful_login_forgets_the_failures_before_it() -> None:
    user, browser = new_user(), Client()
    fail(browser, user.username, 4)
    assert log_in(browser, user.username, PASSWORD).status_code == 302
    browser.post("/accounts/logout/")
    fail(browser, user.username, 4)
    assert log_in(browser, user.username, PASSWORD).status_code == 302


@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(failures=st.integers(min_value=0, max_value=12))
def test_the_right_password_logs_in_exactly_while_there_were_fewer_than_five_failures(
    failures: int,
) -> None:
    user, browser = new_user(), Client()
    fail(browser, user.username, failures)
    response = log_in(browser, user.username, PASSWORD)
    if failures < settings.AXES_FAILURE_LIMIT:
        assert response.status_code == 302 and logged_in(browser)
    else:
        assert response.status_code == 429 and not logged_in(browser)
