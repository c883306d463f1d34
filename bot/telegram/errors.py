"""What a failed Telegram call means for the bot: the one module that reads Telegram's error texts."""

from __future__ import annotations

import logging
from enum import Enum, auto

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

log = logging.getLogger(__name__)


class Result(Enum):
    """How a call ended, in the terms the senders act on."""

    OK = auto()
    NOT_MODIFIED = auto()  # Telegram already shows exactly this: success
    BAD_ENTITIES = auto()  # our formatting was refused (malformed, too many): send plain text instead
    MESSAGE_GONE = auto()  # the message to edit was deleted: send a new one
    REFUSED = auto()  # any other 400 (drafts refused in this chat, …)
    FLOODED = auto()  # 429: the chat is paused for a while
    UNREACHABLE = auto()  # 403: the bot was blocked or removed; stop trying
    FAILED = auto()  # network or server trouble

    @property
    def shown(self) -> bool:
        """Whether Telegram shows what was asked for."""
        return self in (Result.OK, Result.NOT_MODIFIED)


# Transport and server trouble: worth another try a little later.
TRANSIENT_ERRORS = (TelegramNetworkError, TelegramServerError, TimeoutError)


def classify(error: TelegramAPIError | TimeoutError) -> Result:
    if isinstance(error, TelegramRetryAfter):
        return Result.FLOODED
    if isinstance(error, TelegramForbiddenError):
        return Result.UNREACHABLE
    if isinstance(error, TelegramBadRequest):
        return _bad_request(error.message)
    return Result.FAILED


def _bad_request(message: str) -> Result:
    problem = message.lower()
    if "message is not modified" in problem:
        return Result.NOT_MODIFIED
    if "can't parse entities" in problem or "entities_too_long" in problem:
        return Result.BAD_ENTITIES
    if "message to edit not found" in problem:
        return Result.MESSAGE_GONE
    log.error("Telegram refused a call: %s", message)
    return Result.REFUSED


def file_too_big(error: BaseException) -> bool:
    """getFile refused a user's file: it is over the 20 MB Telegram serves bots."""
    return isinstance(error, TelegramBadRequest) and "file is too big" in error.message.lower()
