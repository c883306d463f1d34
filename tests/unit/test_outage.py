"""One log line per change of state of an outage, never a traceback per retry."""

from __future__ import annotations

import logging

import pytest

from bot.outage import OutageLog, describe


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog(logging.getLogger("test.outage"), "the thing")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.ok()  # working all along: nothing to say
        for _ in range(5):
            outage.failed(ConnectionError("Connection closed by server."))
        outage.ok()
        outage.ok()
        outage.failed(TimeoutError())
    assert [r.getMessage() for r in caplog.records] == [
        "the thing lost (ConnectionError: Connection closed by server.); retrying",
        "the thing restored",
        "the thing lost (TimeoutError); retrying",
    ]
    assert not any(r.exc_info for r in caplog.records)


def test_an_error_is_described_in_one_line() -> None:
    assert describe(OSError("first line\nsecond   line")) == "OSError: first line second line"
