"""Where a streaming answer is shown: reply messages edited in place, or a native draft plus messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)

from bot.telegram.calls import ChatCaller, Result
from bot.telegram.render import Rendered
from bot.telegram.target import ChatTarget

log = logging.getLogger(__name__)

STOP_CALLBACK = "stop"
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(frozen=True, slots=True)
class _Shown:
    part: Rendered
    stop_button: bool


class ReplySurface:
    """Keeps Telegram showing a list of parts: message i shows part i.

    In edit mode every part is a real message; the last one is edited as the answer grows and carries a
    Stop button until the end. In draft mode (private chats) the growing last part is a native draft
    (`sendMessageDraft` with a stop button of Telegram's own), and only finished parts become messages; the
    final frame turns the rest into messages. If Telegram refuses drafts, the surface switches to editing
    for the rest of the answer without losing text.
    """

    def __init__(
        self,
        bot: Bot,
        target: ChatTarget,
        caller: ChatCaller,
        *,
        stop_label: str,
        draft_id: int | None = None,
    ) -> None:
        self._bot = bot
        self._target = target
        self._caller = caller
        self._stop_label = stop_label
        self._draft_id = draft_id
        self._draft_shown: Rendered | None = None
        self._plain = False  # Telegram refused our entities once: the rest goes as plain text
        self.unreachable = False
        self._message_ids: list[int | None] = []
        self._shown: list[_Shown | None] = []

    @property
    def target(self) -> ChatTarget:
        return self._target

    async def ready(self) -> None:
        """Wait for this chat's pace and the bot-wide budget before building the next frame."""
        await self._caller.ready()

    @property
    def drafts(self) -> bool:
        return self._draft_id is not None

    @property
    def message_ids(self) -> list[int]:
        return [message_id for message_id in self._message_ids if message_id is not None]

    @property
    def has_messages(self) -> bool:
        return any(message_id is not None for message_id in self._message_ids)

    async def show(self, parts: list[Rendered], *, final: bool) -> bool:
        """Bring Telegram up to date with `parts`; True when all of it is shown."""
        live = parts if final or not self.drafts else parts[:-1]
        for index, part in enumerate(live):
            button = not final and not self.drafts and index == len(parts) - 1
            if not await self._sync(index, part, button=button, final=final):
                return False
        if not final and self.drafts and parts:
            return await self._draft(parts[-1], len(parts) - 1)
        if final:
            await self._drop_spare(len(parts))
        return True

    async def thinking(self) -> None:
        """An empty draft shows Telegram's "Thinking…" placeholder: the first sign the answer is coming."""
        if self.drafts:
            await self._draft(Rendered(""), 0)

    async def refresh_draft(self) -> None:
        """Drafts vanish after about 30 s; resend the current one during a long pause."""
        if self.drafts and self._draft_shown is not None:
            shown, self._draft_shown = self._draft_shown, None
            await self._draft(shown, len(self._message_ids))

    async def _draft(self, part: Rendered, index: int) -> bool:
        if part == self._draft_shown:
            return True
        assert self._draft_id is not None
        draft_id = self._draft_id
        shown = part.plain() if self._plain else part
        result = await self._caller.call(
            lambda: self._bot.send_message_draft(
                chat_id=self._target.chat_id,
                draft_id=draft_id,
                message_thread_id=self._target.message_thread_id,
                text=shown.text,
                entities=shown.telegram_entities(),
                parse_mode=None,
                can_stop=True,
            ),
            final=False,
        )
        if result is Result.OK:
            self._draft_shown = part
            return True
        if result is Result.BAD_ENTITIES and not self._plain:
            self._plain = True
            return await self._draft(part, index)
        if result is Result.REFUSED:
            log.warning("drafts refused in chat %s; editing a reply instead", self._target.chat_id)
            self._draft_id = None
            return not part.text or await self._sync(index, part, button=True, final=False)
        self.unreachable = result is Result.UNREACHABLE
        return False

    async def _sync(self, index: int, part: Rendered, *, button: bool, final: bool) -> bool:
        wanted = _Shown(part, button)
        if index < len(self._shown) and self._shown[index] == wanted:
            return True
        while True:
            shown = part.plain() if self._plain else part
            markup = self._stop_markup() if button else None
            exists = index < len(self._message_ids) and self._message_ids[index] is not None
            operation = self._edit if exists else self._send
            result = await self._caller.call(
                lambda op=operation, p=shown, m=markup: op(index, p, m),  # type: ignore[misc]
                final=final,
            )
            if result in (Result.OK, Result.NOT_MODIFIED):
                self._shown[index] = wanted
                return True
            if result is Result.BAD_ENTITIES and not self._plain:
                log.warning("Telegram rejected our formatting; sending plain text")
                self._plain = True
                continue
            if result is Result.MESSAGE_GONE:
                self._message_ids[index] = None  # the user deleted it: send the part anew
                continue
            self.unreachable = result is Result.UNREACHABLE
            return False

    def _stop_markup(self) -> InlineKeyboardMarkup:
        button = InlineKeyboardButton(text=self._stop_label, callback_data=STOP_CALLBACK)
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    async def _send(self, index: int, part: Rendered, markup: InlineKeyboardMarkup | None) -> None:
        reply = None if self.has_messages else self._target.reply_parameters()
        message = await self._bot.send_message(
            chat_id=self._target.chat_id,
            text=part.text,
            entities=part.telegram_entities(),
            parse_mode=None,
            message_thread_id=self._target.message_thread_id,
            reply_parameters=reply,
            reply_markup=markup,
            link_preview_options=_NO_PREVIEW,
        )
        while len(self._message_ids) <= index:
            self._message_ids.append(None)
            self._shown.append(None)
        self._message_ids[index] = message.message_id

    async def _edit(self, index: int, part: Rendered, markup: InlineKeyboardMarkup | None) -> None:
        await self._bot.edit_message_text(
            chat_id=self._target.chat_id,
            message_id=self._message_ids[index],
            text=part.text,
            entities=part.telegram_entities(),
            parse_mode=None,
            reply_markup=markup,
            link_preview_options=_NO_PREVIEW,
        )

    async def _drop_spare(self, count: int) -> None:
        """A re-render at the end can need fewer messages than the stream used; delete the spare ones."""
        chat_id = self._target.chat_id
        for message_id in self._message_ids[count:]:
            if message_id is not None:
                await self._caller.call(lambda m=message_id: self._bot.delete_message(chat_id, m), final=True)
        del self._message_ids[count:], self._shown[count:]
