"""HTTP-level fake of the Telegram Bot API server (see `server.FakeTelegram`)."""

from tests.fakes.telegram.errors import ApiError, bad_request, too_many_requests
from tests.fakes.telegram.records import Call, SentMessage
from tests.fakes.telegram.server import FakeTelegram
from tests.fakes.telegram.text import utf16_len

__all__ = ["ApiError", "Call", "FakeTelegram", "SentMessage", "bad_request", "too_many_requests", "utf16_len"]
