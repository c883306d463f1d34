"""Shows an answer in Telegram while the model writes it: one reply, edited as text arrives."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import LinkPreviewOptions, MessageEntity, ReplyParameters

from bot.assistant.events import AnswerEvent, Citation, Failed, FailureKind, Finished, TextDelta
from bot.clock import Clock
from bot.telegram.pacing import Pacer
from bot.telegram.render import Rendered, render_markdown, split_rendered, styled
from bot.telegram.target import ChatTarget
from bot.telegram.texts import Texts

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 4.5  # Telegram shows "typing…" for about 5 s per chat action
FINAL_ATTEMPTS = 6
TRANSIENT_BACKOFF_SECONDS = 1.0
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(slots=True)
class StreamOutcome:
    """What the model said and how the answer ended."""

    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    finish: Finished | None = None
    failure: Failed | None = None
    delivered: bool = False

    @property
    def complete(self) -> bool:
        return self.finish is not None and self.failure is None


class ReplyStreamer:
    """Streams one answer into one chat.

    While the model writes, the latest text is rendered and pushed by editing the reply, at most one
    Telegram call per pacing interval. Frames are never queued: each push takes the text as it is at that
    moment, so a slow or rate-limited chat skips intermediate states instead of falling behind. The final
    frame is retried until it is delivered. Text past Telegram's limit continues in new messages.
    """

    def __init__(
        self,
        bot: Bot,
        target: ChatTarget,
        texts: Texts,
        *,
        interval: float,
        clock: Clock,
    ) -> None:
        self._bot = bot
        self._target = target
        self._texts = texts
        self._clock = clock
        self._pacer = Pacer(interval, clock)
        self._outcome = StreamOutcome()
        self._wake = asyncio.Event()
        self._done = False
        self._plain = False  # set once Telegram rejects our entities: the rest goes as plain text
        self._gone = False  # the chat is unreachable (bot blocked, chat deleted)
        self._message_ids: list[int | None] = []
        self._shown: list[Rendered | None] = []

    async def run(self, events: AsyncIterator[AnswerEvent]) -> StreamOutcome:
        typing = asyncio.create_task(self._keep_typing())
        publisher = asyncio.create_task(self._publish_loop())
        try:
            async for event in events:
                self._take(event)
        except BaseException:
            publisher.cancel()
            raise
        finally:
            self._done = True
            self._wake.set()
            typing.cancel()
        self._outcome.delivered = await publisher
        return self._outcome

    def _take(self, event: AnswerEvent) -> None:
        if isinstance(event, TextDelta):
            self._outcome.text += event.text
            self._wake.set()
        elif isinstance(event, Citation):
            if event not in self._outcome.citations:
                self._outcome.citations.append(event)
        elif isinstance(event, Finished):
            self._outcome.finish = event
        else:
            self._outcome.failure = event

    async def _keep_typing(self) -> None:
        while not self._message_ids and not self._done and not self._gone:
            try:
                await self._bot.send_chat_action(
                    self._target.chat_id, ChatAction.TYPING, message_thread_id=self._target.message_thread_id
                )
            except TelegramForbiddenError:
                self._gone = True
                return
            except Exception:  # "typing…" is decoration; never let it break an answer
                log.debug("chat action failed", exc_info=True)
            await self._clock.sleep(TYPING_REFRESH_SECONDS)

    async def _publish_loop(self) -> bool:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._done:
                break
            await self._clock.sleep(self._pacer.delay())
            if self._done:
                break
            if not self._gone and not await self._push(self._frame(final=False), final=False):
                self._wake.set()  # retry with whatever text there is once the pause is over
        if self._gone:
            return False
        return await self._push(self._frame(final=True), final=True)

    def _frame(self, *, final: bool) -> list[Rendered]:
        outcome = self._outcome
        body = render_markdown(outcome.text) if outcome.text.strip() else Rendered("")
        if not final:
            return split_rendered(body)
        notice = self._closing_notice()
        if not body.text:
            # Nothing was written: the notice (or a plain error) is the whole reply.
            return split_rendered(styled(notice or self._texts.failure_before_text[FailureKind.ERROR]))
        if notice:
            body = body + Rendered("\n\n") + styled(notice, "italic")
        if outcome.citations:
            body = body + Rendered("\n\n") + self._sources()
        return split_rendered(body)

    def _closing_notice(self) -> str:
        outcome = self._outcome
        if outcome.failure is not None:
            if outcome.text.strip():
                return self._texts.failure_mid_stream
            return self._texts.failure_before_text[outcome.failure.kind]
        if outcome.finish is not None:
            return self._texts.finish_notice[outcome.finish.reason]
        return ""

    def _sources(self) -> Rendered:
        rendered = styled(f"{self._texts.sources}:", "bold")
        for number, citation in enumerate(self._outcome.citations, start=1):
            line = Rendered(f"\n{number}. ")
            if citation.url:
                line = line + styled(citation.title, "text_link")
                entity = line.entities[-1].copy_with(url=citation.url)
                line = Rendered(line.text, (*line.entities[:-1], entity))
            else:
                line = line + Rendered(citation.title)
            rendered = rendered + line
        return rendered

    async def _push(self, parts: list[Rendered], *, final: bool) -> bool:
        """Make message i show part i for every part; True when Telegram shows the whole frame."""
        for index, part in enumerate(parts):
            if index < len(self._shown) and self._shown[index] == part:
                continue
            if not await self._sync(index, part, final=final):
                return False
        if final:
            # A re-render at the end can need fewer messages than the stream used; drop the spare ones.
            for index in range(len(parts), len(self._message_ids)):
                await self._delete(index)
            del self._message_ids[len(parts) :], self._shown[len(parts) :]
        return True

    async def _sync(self, index: int, part: Rendered, *, final: bool) -> bool:
        failures = 0
        while not self._gone:
            await self._clock.sleep(self._pacer.delay())
            shown = part.plain() if self._plain else part
            try:
                if index < len(self._message_ids) and self._message_ids[index] is not None:
                    await self._edit(index, shown)
                else:
                    await self._send(index, shown)
            except TelegramRetryAfter as error:
                self._pacer.back_off(error.retry_after)
                if not final:
                    return False
                continue
            except TelegramBadRequest as error:
                self._pacer.spent()
                problem = error.message.lower()
                if "message is not modified" in problem:
                    self._shown[index] = part
                    return True
                if "can't parse entities" in problem and not self._plain:
                    log.warning("Telegram rejected our formatting, sending plain text: %s", error.message)
                    self._plain = True
                    continue
                if "message to edit not found" in problem:
                    self._message_ids[index] = None  # the user deleted it: send the part anew
                    continue
                log.error("Telegram refused a reply frame: %s", error.message)
                return False
            except TelegramForbiddenError:
                self._gone = True
                return False
            except (TelegramNetworkError, TelegramServerError, TimeoutError) as error:
                failures += 1
                self._pacer.back_off(TRANSIENT_BACKOFF_SECONDS * failures)
                log.warning("Telegram call failed (%s), attempt %d", error, failures)
                if not final or failures >= FINAL_ATTEMPTS:
                    return False
                continue
            self._pacer.spent()
            self._shown[index] = part
            return True
        return False

    async def _send(self, index: int, part: Rendered) -> None:
        reply = None
        if index == 0 and self._target.reply_to_message_id is not None:
            reply = ReplyParameters(
                message_id=self._target.reply_to_message_id, allow_sending_without_reply=True
            )
        message = await self._bot.send_message(
            chat_id=self._target.chat_id,
            text=part.text,
            entities=_entities(part),
            parse_mode=None,
            message_thread_id=self._target.message_thread_id,
            reply_parameters=reply,
            link_preview_options=_NO_PREVIEW,
        )
        if index < len(self._message_ids):
            self._message_ids[index] = message.message_id
        else:
            self._message_ids.append(message.message_id)
            self._shown.append(None)

    async def _edit(self, index: int, part: Rendered) -> None:
        await self._bot.edit_message_text(
            chat_id=self._target.chat_id,
            message_id=self._message_ids[index],
            text=part.text,
            entities=_entities(part),
            parse_mode=None,
            link_preview_options=_NO_PREVIEW,
        )

    async def _delete(self, index: int) -> None:
        message_id = self._message_ids[index]
        if message_id is None:
            return
        with contextlib.suppress(TelegramBadRequest, TelegramForbiddenError, TelegramNetworkError):
            await self._clock.sleep(self._pacer.delay())
            await self._bot.delete_message(self._target.chat_id, message_id)
            self._pacer.spent()


def _entities(part: Rendered) -> list[MessageEntity] | None:
    return [MessageEntity(**entity) for entity in part.entity_dicts()] or None
