"""The one way the bot sends its own messages: to one chat target, paced, in budget, formatting fallback.

Everything the bot shows goes through a `Sender`: streamed answers (through the reply surface) and every
other message — command replies, notices, history pages, documents. A sender makes its calls through a
`ChatCaller` (the chat's pace, the bot-wide budget, retries), reads failures through
`bot.telegram.errors`, and when Telegram refuses our entities it sends that text, and the rest of what
this sender sends, as plain text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup, InputFile, Message, ReplyParameters

from bot.clock import Clock
from bot.log_context import ChatRef
from bot.target import ChatTarget
from bot.telegram.budget import Budget
from bot.telegram.calls import ChatCaller
from bot.telegram.errors import Result
from bot.telegram.pacing import Pacer
from bot.telegram.render import Rendered

log = logging.getLogger(__name__)

# One-off messages wait out a flood-control pause this long at most (and never longer than
# TELEGRAM_MAX_FLOOD_WAIT); a longer one is reported instead.
MAX_FLOOD_WAIT_SECONDS = 60.0
DEFAULT_MAX_FLOOD_WAIT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Sent:
    """A send's result, and the new message's id when it was sent."""

    result: Result
    message_id: int | None = None


class Sender:
    """The bot's messages to one chat target (a chat, or a forum topic in it)."""

    def __init__(self, bot: Bot, target: ChatTarget, caller: ChatCaller) -> None:
        self._bot = bot
        self._target = target
        self._caller = caller
        self.plain = False  # Telegram refused our entities once: the rest goes as plain text

    @property
    def target(self) -> ChatTarget:
        return self._target

    @property
    def banned(self) -> bool:
        """A flood ban outlasted the bound: this sender sends nothing more (the answer is in the thread)."""
        return self._caller.banned

    async def ready(self) -> bool:
        """Wait for the chat's pace and the bot-wide budget now, so the next call goes out at once."""
        return await self._caller.ready()

    def reply_parameters(self) -> ReplyParameters | None:
        """Reply to the user's message, still sending if they deleted it meanwhile."""
        if self._target.reply_to_message_id is None:
            return None
        return ReplyParameters(message_id=self._target.reply_to_message_id, allow_sending_without_reply=True)

    async def send(
        self,
        part: Rendered,
        *,
        reply: bool = True,
        markup: InlineKeyboardMarkup | None = None,
        final: bool = True,
    ) -> Sent:
        """Send one message (replying to the target's message when `reply`)."""
        sent: list[Message] = []

        async def send(shown: Rendered) -> None:
            sent.append(
                await self._bot.send_message(
                    chat_id=self._target.chat_id,
                    text=shown.text,
                    entities=shown.telegram_entities(),
                    message_thread_id=self._target.topic_id,
                    reply_parameters=self.reply_parameters() if reply else None,
                    reply_markup=markup,
                )
            )

        result = await self._formatted(part, send, final=final)
        return Sent(result, sent[-1].message_id if result is Result.OK else None)

    async def send_parts(
        self, parts: Sequence[Rendered], *, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """Each part as its own message, in order; the first replies, the last carries `markup`."""
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            sent = await self.send(part, reply=index == 0, markup=markup if last else None)
            if sent.result is not Result.OK:
                log.warning(
                    "could not send a message to %s: %s", ChatRef(self._target.chat_id), sent.result.name
                )
                return False
        return True

    async def edit(
        self,
        message_id: int,
        part: Rendered,
        *,
        markup: InlineKeyboardMarkup | None = None,
        final: bool = True,
    ) -> Result:
        """Show `part` in one of our messages instead of what it shows."""

        async def edit(shown: Rendered) -> None:
            await self._bot.edit_message_text(
                chat_id=self._target.chat_id,
                message_id=message_id,
                text=shown.text,
                entities=shown.telegram_entities(),
                reply_markup=markup,
            )

        return await self._formatted(part, edit, final=final)

    async def edit_markup(self, message_id: int, markup: InlineKeyboardMarkup | None) -> Result:
        """Change only the buttons under one of our messages (None takes them away)."""
        chat_id = self._target.chat_id
        return await self._caller.call(
            lambda: self._bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=markup
            ),
            final=True,
        )

    async def draft(self, draft_id: int, part: Rendered) -> Result:
        """Show `part` as the native draft `draft_id` (private chats), with Telegram's stop button."""

        async def draft(shown: Rendered) -> None:
            await self._bot.send_message_draft(
                chat_id=self._target.chat_id,
                draft_id=draft_id,
                message_thread_id=self._target.topic_id,
                text=shown.text,
                entities=shown.telegram_entities(),
                can_stop=True,
            )

        return await self._formatted(part, draft, final=False)

    async def delete(self, message_id: int) -> Result:
        chat_id = self._target.chat_id
        return await self._caller.call(lambda: self._bot.delete_message(chat_id, message_id), final=True)

    async def send_document(self, document: InputFile, *, caption: str) -> Result:
        """Send a file (replying to the target's message), with a plain-text caption."""
        return await self._caller.call(
            lambda: self._bot.send_document(
                chat_id=self._target.chat_id,
                document=document,
                caption=caption,
                message_thread_id=self._target.topic_id,
                reply_parameters=self.reply_parameters(),
            ),
            final=True,
        )

    async def send_voice(self, voice: InputFile, *, caption: str | None = None) -> Sent:
        """Send a voice message (Ogg/Opus), replying to the target's message, with a plain caption."""
        return await self._media(
            lambda: self._bot.send_voice(
                chat_id=self._target.chat_id,
                voice=voice,
                caption=caption,
                message_thread_id=self._target.topic_id,
                reply_parameters=self.reply_parameters(),
            )
        )

    async def send_photo(self, photo: InputFile, *, caption: str | None = None) -> Sent:
        """Send a picture, replying to the target's message, with a plain caption."""
        return await self._media(
            lambda: self._bot.send_photo(
                chat_id=self._target.chat_id,
                photo=photo,
                caption=caption,
                message_thread_id=self._target.topic_id,
                reply_parameters=self.reply_parameters(),
            )
        )

    async def _media(self, call: Callable[[], Awaitable[Message]]) -> Sent:
        sent: list[Message] = []

        async def send() -> None:
            sent.append(await call())

        result = await self._caller.call(send, final=True)
        return Sent(result, sent[-1].message_id if result is Result.OK and sent else None)

    async def _formatted(
        self, part: Rendered, call: Callable[[Rendered], Awaitable[None]], *, final: bool
    ) -> Result:
        while True:
            shown = part.plain() if self.plain else part
            result = await self._caller.call(functools.partial(call, shown), final=final)
            if result is not Result.BAD_ENTITIES or self.plain or not part.entities:
                return result
            log.warning("Telegram rejected our formatting; sending plain text")
            self.plain = True


class Outbox:
    """Makes the senders: every one shares the bot's limits (the bot-wide budget, each group's minute,
    flood bans); each gets its own pace for what it sends."""

    def __init__(
        self,
        bot: Bot,
        budget: Budget,
        clock: Clock,
        *,
        max_flood_wait: float = DEFAULT_MAX_FLOOD_WAIT_SECONDS,
    ) -> None:
        self._bot = bot
        self._budget = budget
        self._clock = clock
        self._max_flood_wait = max_flood_wait

    @property
    def bot(self) -> Bot:
        return self._bot

    async def notify(self, target: ChatTarget, text: str) -> None:
        """A short plain-text message outside of any answer (the turn logic's `Notifier`)."""
        await self.to(target).send_parts([Rendered(text)])

    def to(self, target: ChatTarget) -> Sender:
        """A sender for one-off messages: sent at once, waiting out flood pauses of up to a minute."""
        return self._sender(target, 0.0, min(MAX_FLOOD_WAIT_SECONDS, self._max_flood_wait))

    def streaming(self, target: ChatTarget, *, interval: float) -> Sender:
        """A sender for a streamed answer: calls at least `interval` apart; its final frame waits out
        flood pauses of up to TELEGRAM_MAX_FLOOD_WAIT in all."""
        return self._sender(target, interval, self._max_flood_wait)

    def _sender(self, target: ChatTarget, interval: float, max_flood_wait: float) -> Sender:
        pacer = Pacer(interval, self._clock)
        caller = ChatCaller(pacer, self._budget, self._clock, target.chat_id, max_flood_wait=max_flood_wait)
        return Sender(self._bot, target, caller)
