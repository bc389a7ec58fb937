"""Encryption at rest: the keys are channels-redis' keys, the first encrypts
and every one decrypts."""

from __future__ import annotations

import pytest
from channels_redis.serializers import registry

from realtime.crypto import Cipher, DecryptionError, cipher_for


def test_a_cipher_round_trips_text_and_hides_it():
    cipher = Cipher(["one key"])
    token = cipher.encrypt('{"type":"x","data":"CANARY ü"}')
    assert "CANARY" not in token
    assert cipher.decrypt(token) == '{"type":"x","data":"CANARY ü"}'


def test_keys_are_derived_as_channels_redis_derives_them():
    layer_serializer = registry.get_serializer("json", symmetric_encryption_keys=["shared"])
    token = layer_serializer.crypter.encrypt(b"from the layer").decode()
    assert Cipher(["shared"]).decrypt(token) == "from the layer"


def test_rotation_the_first_key_encrypts_and_all_decrypt():
    old = Cipher(["old"]).encrypt("kept in history")
    rotated = Cipher(["new", "old"])
    assert rotated.decrypt(old) == "kept in history"
    assert Cipher(["new"]).decrypt(rotated.encrypt("fresh")) == "fresh"
    with pytest.raises(DecryptionError):
        Cipher(["unrelated"]).decrypt(old)


def test_no_keys_means_no_cipher():
    assert cipher_for([]) is None
    assert isinstance(cipher_for(["k"]), Cipher)
