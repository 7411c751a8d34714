"""A password rule beyond length: no well-known word dressed up. Django's
CommonPasswordValidator compares the whole password with 20,000 leaked ones, so
"P@ssw0rd2024!" (13 characters, not on its list) passes it; attackers' wordlists try
exactly such variants first (digits and symbols around a word, letters swapped for
look-alikes). This validator takes the decoration off and compares what is left with the
words breached-password lists are made of, and compares the whole password with a few
long breached ones (keyboard walks) that length does not stop.

The lists (breached.txt) are short on purpose: words picked by hand from the top of
the publicly reported most-used passwords (yearly top-password lists, the RockYou leak),
and the words people put into this admin's password (the product's and the roles'
names). They are no substitute for a full breach corpus, which the admin cannot fetch
(it runs without internet)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

# The lists, in a file of their own beside this module.
LISTS_FILE = Path(__file__).with_name("breached.txt")


def read_lists(path: Path) -> dict[str, frozenset[str]]:
    """The sections of a lists file ("[words]", "[passwords]") and their entries:
    several a line, separated by spaces; lines starting with # are comments."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], set())
        elif line and not line.startswith("#") and current is not None:
            current.update(entry.lower() for entry in line.split())
    return {name: frozenset(entries) for name, entries in sections.items()}


_LISTS = read_lists(LISTS_FILE)
# Words that, alone or repeated and whatever is around them, make a guessable password.
BREACHED_WORDS = _LISTS["words"]
# Long breached passwords that no word is hidden in (keyboard walks), compared whole.
BREACHED_PASSWORDS = _LISTS["passwords"]
# Look-alike characters people put in a word, and the letter each stands for.
LOOK_ALIKES = {
    "@": "a", "4": "a", "8": "b", "3": "e", "1": "i", "!": "i",
    "0": "o", "5": "s", "$": "s", "7": "t", "+": "t", "|": "l",
}  # fmt: skip
_READ_AS_LETTERS = str.maketrans(LOOK_ALIKES)
# Decoration taken off either end, tried at every length up to this (beyond it, all of
# it): a look-alike can stand at the word's edge ("4dmin!"), so where the word begins is
# not known, and trying every length of a long run would make a long password costly.
MAX_DECORATION = 8
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_NOT_LETTER = re.compile(r"[^a-z]")


def core_words(password: str) -> set[str]:
    """What may be left of a password without its decoration: lower case, some or all
    of the non-letters at either end taken off, look-alikes read as the letters they
    stand for, and what is still not a letter dropped ("P@ssw0rd2024!" gives "password"
    among others)."""
    lower = password.lower()
    lead = _run_of_non_letters(lower)
    trail = _run_of_non_letters(lower[::-1])
    cores = set()
    for start in {*range(min(lead, MAX_DECORATION) + 1), lead}:
        for cut in {*range(min(trail, MAX_DECORATION) + 1), trail}:
            if start + cut <= len(lower):
                middle = lower[start : len(lower) - cut]
                cores.add(_NOT_LETTER.sub("", middle.translate(_READ_AS_LETTERS)))
    cores.discard("")
    return cores


def _run_of_non_letters(text: str) -> int:
    for position, char in enumerate(text):
        if char in _LETTERS:
            return position
    return len(text)


def is_repeated_word(core: str) -> bool:
    """Whether `core` is a breached word written once or more times over ("adminadmin")."""
    return any(
        core[:size] * (len(core) // size) == core and core[:size] in BREACHED_WORDS
        for size in range(1, len(core) + 1)
        if len(core) % size == 0
    )


def is_breached(password: str) -> bool:
    """Whether the password is a breached one, or a breached word with decoration."""
    if password.strip().lower() in BREACHED_PASSWORDS:
        return True
    return any(is_repeated_word(core) for core in core_words(password))


class BreachedPasswordValidator:
    """Django password validator (AUTH_PASSWORD_VALIDATORS) refusing `is_breached`
    passwords."""

    message = (
        "This password is a well-known word with digits or symbols around it, or a "
        "breached password: lists of leaked passwords try these first. Use a few "
        "unrelated words, or let a password manager make one up."
    )

    def validate(self, password: str, user: Any = None) -> None:
        """Raise `ValidationError` (code "password_breached") for a breached password."""
        if is_breached(password):
            raise ValidationError(self.message, code="password_breached")

    def get_help_text(self) -> str:
        """The rule, as the password forms show it."""
        return "Your password can't be a well-known word dressed up with digits or symbols."
