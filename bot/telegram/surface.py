"""Where a streaming answer is shown: reply messages edited in place, or a native draft plus messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.log_context import ChatRef
from bot.target import ChatTarget
from bot.telegram.errors import Result
from bot.telegram.render import Rendered
from bot.telegram.sender import Sender

log = logging.getLogger(__name__)

STOP_CALLBACK = "stop"


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
    for the rest of the answer without losing text. `message_ids` continues an answer already on screen
    (crash recovery). A final frame Telegram refuses to edit in is sent as plain text, then as a new message.
    """

    def __init__(
        self,
        sender: Sender,
        *,
        stop_label: str,
        draft_id: int | None = None,
        message_ids: Sequence[int] = (),
    ) -> None:
        self._sender = sender
        self._stop_label = stop_label
        self._draft_id = draft_id
        self._draft_shown: Rendered | None = None
        self.unreachable = False
        self._message_ids: list[int | None] = list(message_ids)
        self._shown: list[_Shown | None] = [None] * len(self._message_ids)

    @property
    def target(self) -> ChatTarget:
        return self._sender.target

    async def ready(self) -> None:
        """Wait for this chat's pace and the bot-wide budget before building the next frame."""
        if not await self._sender.ready():
            self.unreachable = self.unreachable or self._sender.banned

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
        result = await self._sender.draft(self._draft_id, part)
        if result is Result.OK:
            self._draft_shown = part
            return True
        if result is Result.REFUSED:
            log.warning("drafts refused in %s; editing a reply instead", ChatRef(self.target.chat_id))
            self._draft_id = None
            return not part.text or await self._sync(index, part, button=True, final=False)
        self.unreachable = result is Result.UNREACHABLE or self._sender.banned
        return False

    async def _sync(self, index: int, part: Rendered, *, button: bool, final: bool) -> bool:
        wanted = _Shown(part, button)
        if index < len(self._shown) and self._shown[index] == wanted:
            return True
        markup = self._stop_markup() if button else None
        fresh = False  # the final frame was already tried as a message of its own
        reply = True  # a new message replies to the question, unless sending the reply was refused
        stale: int | None = None  # a message the final frame could not be shown in, left with old text
        while True:
            message_id = self._message_ids[index] if index < len(self._message_ids) else None
            if message_id is not None:
                result = await self._sender.edit(message_id, part, markup=markup, final=final)
            else:
                result = await self._send(index, part, markup, final=final, reply=reply)
            if result.shown:
                self._shown[index] = wanted
                if stale is not None:
                    await self._sender.delete(stale)  # the text now shows in the new message only
                return True
            if result is Result.MESSAGE_GONE:
                self._message_ids[index] = None  # the user deleted it: send the part anew
                continue
            if final and result in (Result.REFUSED, Result.BAD_ENTITIES):
                # The final text must reach the user: plain text first, then a message of its own.
                if not self._sender.plain and part.entities:
                    log.warning(
                        "%s refused the final frame; sending it as plain text", ChatRef(self.target.key)
                    )
                    self._sender.plain = True
                    continue
                if not fresh:
                    log.warning(
                        "%s refused the final frame; sending it as a new message", ChatRef(self.target.key)
                    )
                    fresh = True
                    if message_id is not None:
                        stale = message_id
                        self._message_ids[index] = None
                    else:
                        reply = False
                    continue
                log.error(
                    "could not deliver the final answer to chat %s: Telegram refused it as formatted text, "
                    "as plain text and as a new message (the answer is kept in the thread)",
                    self.target.key,
                )
            self.unreachable = result is Result.UNREACHABLE or self._sender.banned
            return False

    def _stop_markup(self) -> InlineKeyboardMarkup:
        keyboard = InlineKeyboardBuilder()
        keyboard.button(text=self._stop_label, callback_data=STOP_CALLBACK)
        return keyboard.as_markup()

    async def _send(
        self,
        index: int,
        part: Rendered,
        markup: InlineKeyboardMarkup | None,
        *,
        final: bool,
        reply: bool = True,
    ) -> Result:
        reply = reply and not self.has_messages
        sent = await self._sender.send(part, reply=reply, markup=markup, final=final)
        if sent.message_id is not None:
            while len(self._message_ids) <= index:
                self._message_ids.append(None)
                self._shown.append(None)
            self._message_ids[index] = sent.message_id
        return sent.result

    async def _drop_spare(self, count: int) -> None:
        """A re-render at the end can need fewer messages than the stream used; delete the spare ones."""
        for message_id in self._message_ids[count:]:
            if message_id is not None:
                await self._sender.delete(message_id)
        del self._message_ids[count:], self._shown[count:]
