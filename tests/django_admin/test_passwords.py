"""The password rule: at least 12 characters, not like the username, not all digits, not
one of Django's 20,000 common passwords, and not a well-known word dressed up with
digits, symbols or look-alike letters ("P@ssw0rd2024!", which Django's list misses). It
holds for the first superuser, the password change page and new users in /users/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import strategies as st

from django_admin.bootstrap import WeakPassword, ensure_superuser
from django_admin.site.passwords import (
    BREACHED_PASSWORDS,
    BREACHED_WORDS,
    LOOK_ALIKES,
    MAX_DECORATION,
    is_breached,
)
from tests.django_admin.conftest import text, unique

STRONG = ["violet-kettle-harbour-92", "Tram7!Orbit#Lantern", "a-long-test-password-42"]
FAST_HASHING = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
# The letters each look-alike stands for, the other way round.
DISGUISES: dict[str, list[str]] = {}
for _char, _letter in LOOK_ALIKES.items():
    DISGUISES.setdefault(_letter, []).append(_char)
DECORATION = st.text(alphabet="0123456789!@#$%^&*()_-+=.?~ ", max_size=MAX_DECORATION)


@pytest.fixture(autouse=True)
def fast_hashing() -> Iterator[None]:
    """Cheap password hashes: the rule does not depend on the hasher."""
    with FAST_HASHING:
        yield


def refusals(password: str, username: str = "operator-x") -> list[str]:
    """The codes of the rules a password breaks (none: accepted)."""
    try:
        validate_password(password, get_user_model()(username=username))
    except ValidationError as exc:
        return [error.code for error in exc.error_list]
    return []


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Sh0rt-pass!", "password_too_short"),  # 11 characters
        ("839201746382915", "password_entirely_numeric"),
        ("cookiemonster", "password_too_common"),  # on Django's list
        ("P@ssw0rd2024!", "password_breached"),  # a dressed-up word
        ("4dmin!!2025##", "password_breached"),
        ("AdminAdmin#1", "password_breached"),
        ("Welcome#2025#", "password_breached"),
        ("1qaz2wsx3edc", "password_breached"),  # a keyboard walk
        ("gits-admin-2025", "password_breached"),
        ("maintenance-engineer1", "password_too_similar"),  # like the username
    ],
)
def test_weak_passwords_are_refused(password: str, code: str) -> None:
    assert code in refusals(password, username="maintenance-engineer")


@pytest.mark.parametrize("password", STRONG)
def test_strong_passwords_are_accepted(password: str) -> None:
    assert refusals(password) == []


def test_a_dressed_up_word_passes_djangos_list_but_not_this_rule() -> None:
    CommonPasswordValidator().validate("P@ssw0rd2024!")  # Django alone lets it through
    assert is_breached("P@ssw0rd2024!")


def test_the_forms_say_the_rule() -> None:
    helps = " ".join(password_validators_help_texts())
    assert "at least 12 characters" in helps
    assert "well-known word" in helps


@given(
    word=st.sampled_from(sorted(BREACHED_WORDS)),
    repeats=st.integers(min_value=1, max_value=3),
    disguised=st.lists(st.booleans(), min_size=60, max_size=60),
    upper=st.lists(st.booleans(), min_size=60, max_size=60),
    before=DECORATION,
    after=DECORATION,
    pick=st.integers(min_value=0, max_value=3),
)
def test_every_breached_word_is_refused_however_dressed_up(
    word: str,
    repeats: int,
    disguised: list[bool],
    upper: list[bool],
    before: str,
    after: str,
    pick: int,
) -> None:
    # Given a breached word, repeated, some letters swapped for look-alikes or upper
    # case, digits and symbols before and after
    letters = []
    for n, letter in enumerate(word * repeats):
        swaps = DISGUISES.get(letter)
        if swaps and disguised[n % 60]:
            letters.append(swaps[pick % len(swaps)])
        else:
            letters.append(letter.upper() if upper[n % 60] else letter)
    password = before + "".join(letters) + after
    # Then the rule refuses it
    assert is_breached(password), password


@given(st.sampled_from(sorted(BREACHED_PASSWORDS)), st.booleans())
def test_every_breached_password_is_refused(password: str, upper: bool) -> None:
    assert is_breached(password.upper() if upper else password)


@given(st.text(max_size=300))
def test_any_text_is_judged_without_error(password: str) -> None:
    assert is_breached(password) in (True, False)


def test_a_long_password_is_judged_quickly() -> None:
    # Trying every decoration length would be quadratic: it is bounded
    assert not is_breached("7" * 20_000 + "x" + "7" * 20_000)


@pytest.fixture
def no_superuser() -> None:
    """A user database without any superuser, as on the first start."""
    get_user_model().objects.filter(is_superuser=True).delete()


def test_the_first_superuser_follows_the_rule(no_superuser: None) -> None:
    with pytest.raises(WeakPassword, match="well-known word"):
        ensure_superuser(username="gits-admin", password="P@ssw0rd2024!")
    with pytest.raises(WeakPassword, match="at least 12 characters"):
        ensure_superuser(username="gits-admin", password="Gx7#kq2!")
    assert not get_user_model().objects.filter(is_superuser=True).exists()
    assert ensure_superuser(username="gits-admin", password=STRONG[0]) is None


def operator_with(password: str) -> tuple[Any, Client]:
    """A user with a password, and a browser logged in as them."""
    user = get_user_model().objects.create_user(username=unique("pw"), password=password)
    browser = Client()
    browser.force_login(user)
    return user, browser


def change(browser: Client, old: str, new: str) -> Any:
    """Post the password change form."""
    form = {"old_password": old, "new_password1": new, "new_password2": new}
    return browser.post("/accounts/password/", form)


def test_a_password_change_follows_the_rule() -> None:
    user, browser = operator_with(STRONG[0])

    # A weak new password is refused with the reason, and the old one stays
    refused = change(browser, STRONG[0], "Summer2024!!")
    assert refused.status_code == 200 and "well-known word" in text(refused)
    user.refresh_from_db()
    assert user.check_password(STRONG[0])

    # A strong one is taken
    taken = change(browser, STRONG[0], STRONG[1])
    assert taken.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG[1])


def test_a_new_user_in_the_user_admin_follows_the_rule() -> None:
    boss, _ = get_user_model().objects.get_or_create(
        username="pw-superuser", defaults={"is_superuser": True, "is_staff": True}
    )
    browser = Client()
    browser.force_login(boss)
    name = unique("newcomer")
    form = {"username": name, "usable_password": "true", "password1": "Qwerty123456!"}
    response = browser.post("/users/auth/user/add/", form | {"password2": form["password1"]})
    assert response.status_code == 200 and "well-known word" in text(response)
    assert not get_user_model().objects.filter(username=name).exists()
