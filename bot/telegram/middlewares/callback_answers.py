"""Every button press is answered (or the user's client spins for a while), whatever the handler does."""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware

log = logging.getLogger(__name__)


class CallbackAnswers(CallbackAnswerMiddleware):
    """aiogram's automatic answer after the handler (handlers set `callback_answer.text`), quiet about a
    press that expired meanwhile: its answer is not needed any more, and the rest was done."""

    # aiogram declares this as returning the method object it awaits; a coroutine serves it just as well.
    async def answer(self, event: CallbackQuery, callback_answer: CallbackAnswer) -> Any:  # type: ignore[override]
        await answer_quietly(event, callback_answer.text, show_alert=callback_answer.show_alert)


async def answer_quietly(
    query: CallbackQuery, text: str | None = None, *, show_alert: bool | None = None
) -> None:
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramBadRequest as error:
        log.debug("callback query not answered: %s", error.message)
