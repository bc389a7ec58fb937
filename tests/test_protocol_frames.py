"""The publication frames built from pre-serialized data are exactly the
envelope the protocol defines, encoded."""

from __future__ import annotations

import pytest

from realtime import protocol

DATA = {"text": 'héllo \u2028 "quoted" <tag>', "n": [1, 2.5, None, True], "nested": {"a": {}}}


@pytest.fixture(autouse=True)
def _frozen_time(monkeypatch):
    monkeypatch.setattr(protocol, "timestamp", lambda: "2026-12-01T00:00:00.000Z")


def test_publication_prefixes_are_the_encoded_envelope_without_its_closing_brace():
    prefixes = protocol.publication_prefixes(
        "job_created", protocol.encode(DATA), id="m-1", channels=["jobs", "user.7"]
    )
    assert prefixes == [
        protocol.encode(protocol.envelope("job_created", DATA, channel=c, id="m-1"))[:-1]
        for c in ["jobs", "user.7"]
    ]


def test_a_publication_to_all_is_the_encoded_envelope():
    frame = protocol.publication_to_all("notice", protocol.encode(DATA), id="m-2")
    assert frame == protocol.encode(protocol.envelope("notice", DATA, id="m-2"))


@pytest.mark.parametrize(
    ("text", "size"), [("abc", 3), ("é", 2), ("€", 3), ("😀", 4), ("\ud800", 3)]
)
def test_utf8_size_is_the_size_in_bytes(text, size):
    assert protocol.utf8_size(text) == size
