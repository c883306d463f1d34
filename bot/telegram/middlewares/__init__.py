"""The dispatcher's middlewares, installed in one place and in one order.

Update level (outer), in this order, because each relies on the ones before it:
1. `ChatOrdering`: a chat's messages keep their arrival order; it must come before anything that awaits.
2. `FirstSign`: "typing…" for a question at once, before any Redis round trip.
3. `UpdateDeduplicator`: an update delivered twice is handled once (before it can count against limits).
Event level: `AccessMiddleware` (outer, on messages, button presses and draft stops) refuses strangers
before any handler runs; `CallbackAnswers` (inner, on button presses) answers every press.
"""

from __future__ import annotations

from aiogram import Dispatcher

from bot.telegram.middlewares.access import AccessMiddleware
from bot.telegram.middlewares.callback_answers import CallbackAnswers
from bot.telegram.middlewares.dedupe import UpdateDeduplicator
from bot.telegram.middlewares.first_sign import FirstSign
from bot.telegram.middlewares.ordering import ArrivalLine, ChatOrdering


def install_middlewares(
    dispatcher: Dispatcher,
    *,
    first_sign: FirstSign,
    dedupe: UpdateDeduplicator,
    access: AccessMiddleware,
    line: ArrivalLine | None = None,
) -> None:
    dispatcher.update.outer_middleware(ChatOrdering(line))
    dispatcher.update.outer_middleware(first_sign)
    dispatcher.update.outer_middleware(dedupe)
    for observer in (dispatcher.message, dispatcher.callback_query, dispatcher.stopped_message_generation):
        observer.outer_middleware(access)
    dispatcher.callback_query.middleware(CallbackAnswers())
