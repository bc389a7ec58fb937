"""
Encryption at rest in Redis: REALTIME["ENCRYPTION_KEYS"].

Keys are strings of any form, turned into Fernet keys the way channels-redis
turns its `symmetric_encryption_keys` into keys (the SHA-256 of the string,
base64url-encoded), so one list configures both: the channel layer encrypts
what crosses Redis pub/sub, and this module what the history keeps. The first
key encrypts; every key decrypts, so keys can be rotated by putting the new
one first and dropping the old one once the history has expired.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(ValueError):
    """A history entry that none of the configured keys decrypts."""


def fernet_for(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode("utf-8")).digest()))


class Cipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("A cipher needs at least one key.")
        self._fernet = MultiFernet([fernet_for(key) for key in keys])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise DecryptionError("No configured key decrypts this entry.") from exc


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> Cipher | None:
    return Cipher(keys) if keys else None


def cipher_for(keys: Sequence[str]) -> Cipher | None:
    """The cipher of these keys, None when there are none (no encryption)."""
    return _cipher(tuple(keys))
