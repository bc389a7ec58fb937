"""What makes two usernames the same name.

A username is stored as typed, after Unicode NFKC normalisation (as Django
does: a fullwidth `ｗｒｋ３` is stored as `wrk3`). Two names are the same name
when their *keys* are equal: NFKC, then case folding (`WRK3`, `wrk3` and
`ｗｒｋ３` share the key `wrk3`). The key is unique in the database, and login
looks users up by it.

A name may not mix letters of different scripts (a Cyrillic `а` in a Latin
name looks like the Latin one): `mixes_scripts` says when it does.
"""

from __future__ import annotations

import unicodedata

# Scripts that are written together: Japanese mixes kana and kanji, Korean
# hangul and hanja. Each of these counts as one script here.
_SCRIPT_GROUPS = {
    "CJK": "HAN",
    "HIRAGANA": "HAN",
    "KATAKANA": "HAN",
    "HALFWIDTH": "HAN",
    "HANGUL": "HAN",
    "IDEOGRAPHIC": "HAN",
}


def normalize(username: str) -> str:
    """The stored form of a username: NFKC, as Django's normalize_username."""
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """The form in which two usernames are compared: NFKC, case folded, NFKC
    again (case folding can undo the normal form)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def _script(character: str) -> str:
    """The script of a letter, from the first word of its Unicode name
    (LATIN, CYRILLIC, GREEK, ARABIC, CJK, ...)."""
    name = unicodedata.name(character, "")
    first = name.split(" ", 1)[0].split("-", 1)[0]
    return _SCRIPT_GROUPS.get(first, first)


def mixes_scripts(username: str) -> bool:
    """Whether the letters of `username` come from more than one script.
    Digits and punctuation belong to none."""
    scripts = {_script(character) for character in username if character.isalpha()}
    return len(scripts) > 1
