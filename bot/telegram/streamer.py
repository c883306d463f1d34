"""Shows an answer in Telegram while the model writes it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from bot.assistant.events import (
    AnswerEvent,
    TextDelta,
    Tool,
    ToolActivity,
)
from bot.clock import Clock
from bot.metrics import Metrics, StreamWatch
from bot.target import ChatTarget
from bot.telegram.chat_action import TYPING_LASTS_SECONDS, TypingIndicator
from bot.telegram.render import Rendered, render_markdown, split_rendered, styled
from bot.telegram.retry_button import RetryButtons
from bot.telegram.sender import Outbox
from bot.telegram.surface import ReplySurface
from bot.texts import Texts
from bot.turns.streaming import ProgressCallback, StreamOutcome, closing_notice, consume_until_stopped

log = logging.getLogger(__name__)

DRAFT_REFRESH_SECONDS = 20.0  # a draft disappears after about 30 s without an update
MIN_NEW_CHARACTERS = 12  # smaller growth is not worth a Telegram call (unless the answer is finished)
MAX_WORD_WAIT = 200  # text without a space for this long is shown anyway (URLs, scripts without spaces)
# A question waiting for a generation slot: told so once it has waited this long (a short wait needs no
# message), then updated when its place changes, at most every WAIT_REFRESH_SECONDS at first and ever
# more rarely (doubling, up to WAIT_REFRESH_MAX_SECONDS). Hundreds of waiting chats share Telegram's ~30
# calls a second with the answers being written: a long line gets few updates, and costs them little.
WAIT_NOTICE_AFTER_SECONDS = 2.0
WAIT_REFRESH_SECONDS = 5.0
WAIT_REFRESH_MAX_SECONDS = 60.0
# And all waiting chats of a process together get at most this many notices a second, whatever the line's
# length: a burst of hundreds of questions is told its places a few at a time, front first, while the
# answers being written keep most of the bot-wide budget (25 calls/s) for themselves.
WAIT_NOTICES_PER_SECOND = 5.0


class NoticeRate:
    """The shared pace of "in line" notices: at most `rate` a second, first come first served."""

    def __init__(self, clock: Clock, rate: float = WAIT_NOTICES_PER_SECOND) -> None:
        self._clock = clock
        self._interval = 1.0 / rate
        self._next_at = clock.now()
        self._queue = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._queue:
            await self._clock.sleep(max(0.0, self._next_at - self._clock.now()))
            self._next_at = max(self._next_at, self._clock.now()) + self._interval


class _NotWaiting:
    pass


NOT_WAITING = _NotWaiting()

# Called once the answer is shown and saved with the id of its last message, which gets the ↻ button, or
# None when a newer question already waits (the button only leaves the answer before).
AnswerSaved = Callable[[int | None], Awaitable[None]]


class ReplyStreamer:
    """Streams one answer into one chat.

    The model's events are consumed as fast as they come; a publisher pushes the newest text whenever the
    chat's pacing allows, so frames are never queued and a slow or flood-limited chat skips intermediate
    states instead of falling behind. Intermediate frames end at a word boundary and wait for a meaningful
    change; the final frame (with any notice and the sources) is retried until Telegram has it. `stop()`
    ends the answer within moments: the model stream is closed and what was written stays, marked stopped.
    """

    def __init__(
        self,
        surface: ReplySurface,
        texts: Texts,
        *,
        clock: Clock,
        typing: TypingIndicator,
        on_progress: ProgressCallback | None = None,
        on_saved: AnswerSaved | None = None,
        notice_rate: NoticeRate | None = None,
        watch: StreamWatch | None = None,
    ) -> None:
        self._watch = watch or StreamWatch(None, clock.now)  # the answer's timing, for the metrics
        self._typing_indicator = typing
        self._notice_rate = notice_rate
        self._on_progress = on_progress
        self._on_saved = on_saved
        self._notes: list[str] = []
        self._surface = surface
        self._texts = texts
        self._clock = clock
        self._outcome = StreamOutcome()
        self._tool: Tool | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._done = False
        self._pushed_chars = -1
        self._typing: asyncio.Task[None] | None = None
        # The line for a generation slot: the place (None: "waiting for a free slot"), and what was shown.
        self._waiting: int | _NotWaiting | None = NOT_WAITING
        self._wait_started_at: float | None = None
        self._wait_shown: str | None = None
        self._wait_shown_at = 0.0
        self._wait_gap = WAIT_REFRESH_SECONDS
        self._wait_timer: asyncio.Task[None] | None = None
        self._notice_cleared = notice_rate is None  # the shared notice pace let the next notice go

    def stop(self, *, interrupted: bool = False) -> None:
        """End the answer now, keeping what was written; `interrupted` marks a shutdown, not the user."""
        self._outcome.interrupted = self._outcome.interrupted or interrupted
        self._stop.set()

    def add_note(self, note: str) -> None:
        """A line to show under the finished answer (e.g. that old context was dropped)."""
        self._notes.append(note)

    def show_waiting(self, position: int | None) -> None:
        """The question waits for a generation slot (`position` in line, None: for a free slot)."""
        now = self._clock.now()
        if self._wait_started_at is None:
            self._wait_started_at = now
        self._waiting = position
        if self._outcome.text or self._done:
            return
        # The publisher is woken only when a notice is due (and the shared pace allows it), so waiting
        # costs no Telegram call, and no share of the bot-wide budget, until something is shown.
        self._notice_at(self._wait_due())

    def _notice_at(self, due: float) -> None:
        if self._wait_timer is None or self._wait_timer.done():
            self._wait_timer = asyncio.create_task(self._wake_at(due))

    def _wait_due(self) -> float:
        assert self._wait_started_at is not None
        if self._wait_shown is None:
            return self._wait_started_at + WAIT_NOTICE_AFTER_SECONDS
        return self._wait_shown_at + self._wait_gap

    async def _wake_at(self, moment: float) -> None:
        await self._clock.sleep(max(0.0, moment - self._clock.now()))
        if self._notice_rate is not None and not self._notice_cleared:
            await self._notice_rate.acquire()
            self._notice_cleared = True
        self._wake.set()

    def show_typing(self) -> None:
        """Start the "typing…" indicator now (before the turn even begins), until the first frame shows."""
        if self._typing is None and not self._surface.drafts:
            self._typing = asyncio.create_task(self._keep_typing())

    def close(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
        if self._wait_timer is not None:
            self._wait_timer.cancel()

    async def run(self, events: AsyncIterator[AnswerEvent]) -> StreamOutcome:
        self.show_typing()
        publisher = asyncio.create_task(self._publish_loop())
        consumer = asyncio.create_task(self._consume(events))
        try:
            if await consume_until_stopped(consumer, self._stop):
                self._outcome.stopped = True
            if self._stop.is_set() and self._outcome.finish is None and self._outcome.failure is None:
                self._outcome.stopped = True  # the events ended because of the stop (e.g. left the line)
        except BaseException:
            publisher.cancel()
            consumer.cancel()
            raise
        finally:
            self._done = True
            self._wake.set()
            self.close()
        self._outcome.delivered = await publisher
        return self._outcome

    async def saved(self, *, last: bool) -> None:
        """The turn is in the thread: its answer gets the ↻ button (if it is the `last` one), which
        leaves the answer before. Skipping it while newer questions wait saves two calls per answer."""
        outcome = self._outcome
        # A shutdown's interrupted answer is left as it is: the process is going away.
        if self._on_saved is None or not outcome.delivered or outcome.interrupted:
            return
        message_ids = self._surface.message_ids
        try:
            await self._on_saved(message_ids[-1] if last and message_ids else None)
        except Exception:  # a courtesy button; the answer itself is shown
            log.warning("could not move the retry button", exc_info=True)

    async def close_interrupted(self, text: str) -> StreamOutcome:
        """Finish an answer a dead process left half-shown: its text with the "interrupted" notice."""
        outcome = self._outcome
        outcome.text, outcome.stopped, outcome.interrupted = text, True, True
        outcome.delivered = await self._surface.show(self._final_frame(), final=True)
        return outcome

    async def _consume(self, events: AsyncIterator[AnswerEvent]) -> None:
        async for event in events:
            self._take(event)

    def _take(self, event: AnswerEvent) -> None:
        if isinstance(event, TextDelta | ToolActivity):
            self._waiting = NOT_WAITING  # the answer has begun
        if isinstance(event, ToolActivity):
            if self._tool is None and not self._outcome.text:
                self._tool = event.tool
                self._wake.set()
            return
        self._outcome.add(event)
        if isinstance(event, TextDelta):
            self._watch.text_arrived()
            self._wake.set()

    async def _keep_typing(self) -> None:
        target = self._surface.target
        while not self._surface.has_messages and not self._done:
            if not await self._typing_indicator.ping(target):
                return
            await self._clock.sleep(TYPING_LASTS_SECONDS)

    async def _publish_loop(self) -> bool:
        await self._surface.thinking()
        while not self._done:
            woke = await self._wait_for_news()
            if self._done:
                break
            if not woke:
                await self._surface.refresh_draft()
                continue
            await self._surface.ready()  # pace first, then render the newest text
            if self._done or self._surface.unreachable:
                continue
            parts = self._intermediate_frame()
            if parts is None:
                continue
            # Recorded before it is shown, so a crash while the frame goes out never leaves the record
            # behind what the chat shows (the recovery would put back less than the user had read);
            # again after, when the frame opened a message whose id the record needs.
            shown_in = list(self._surface.message_ids)
            if self._on_progress is not None:
                await self._report_progress()
            if not await self._surface.show(parts, final=False):
                self._wake.set()  # try again with newer text once the pause is over
                continue
            self._watch.shown(with_text=self._pushed_chars > 0)
            if self._on_progress is not None and self._surface.message_ids != shown_in:
                await self._report_progress()
        if self._surface.unreachable:
            return False
        shown = await self._surface.show(self._final_frame(), final=True)
        self._watch.shown(with_text=shown and bool(self._outcome.text.strip()))
        return shown

    async def _wait_for_news(self) -> bool:
        timeout = DRAFT_REFRESH_SECONDS if self._surface.drafts else None
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _report_progress(self) -> None:
        assert self._on_progress is not None
        try:
            await self._on_progress(self._surface.message_ids, self._outcome.text)
        except Exception:  # the journal is a safety net; a Redis hiccup must not break the answer
            log.warning("could not record the answer's progress", exc_info=True)

    def _intermediate_frame(self) -> list[Rendered] | None:
        text = self._outcome.text
        if not text.strip() and self._tool is None and not isinstance(self._waiting, _NotWaiting):
            return self._waiting_frame()
        if not text.strip():
            if self._tool is None or self._pushed_chars >= 0:
                return None
            self._pushed_chars = 0
            return [styled(self._texts.tool_status[self._tool], "italic")]
        boundary = max(text.rfind(" "), text.rfind("\n"))  # -1: not even one whole word yet
        if len(text) - boundary <= MAX_WORD_WAIT:
            text = text[: max(boundary, 0)]
        grown = len(text) - max(self._pushed_chars, 0)
        if self._pushed_chars > 0 and grown < MIN_NEW_CHARACTERS:
            return None
        if not text.strip():
            return None
        self._pushed_chars = len(text)
        return split_rendered(render_markdown(text))

    def _waiting_frame(self) -> list[Rendered] | None:
        position = self._waiting
        if position is None:
            notice = self._texts.waiting_slot
        else:
            notice = self._texts.waiting_position.format(position=position)
        if notice == self._wait_shown:
            return None
        now, due = self._clock.now(), self._wait_due()
        if now < due or not self._notice_cleared:
            self._notice_at(due)
            return None
        if self._wait_shown is not None:
            self._wait_gap = min(self._wait_gap * 2, WAIT_REFRESH_MAX_SECONDS)
        self._wait_shown, self._wait_shown_at = notice, now
        self._notice_cleared = self._notice_rate is None
        return [styled(notice, "italic")]

    def _final_frame(self) -> list[Rendered]:
        outcome = self._outcome
        body = render_markdown(outcome.text) if outcome.text.strip() else Rendered("")
        notice = closing_notice(outcome, self._texts)
        if not body.text:
            # Nothing was written: the notice (or a plain error) is the whole reply.
            return split_rendered(styled(notice or self._texts.empty_answer))
        for line in (*self._notes, notice):
            if line:
                body = body + Rendered("\n\n") + styled(line, "italic")
        if outcome.citations:
            body = body + Rendered("\n\n") + self._sources()
        return split_rendered(body)

    def _sources(self) -> Rendered:
        rendered = styled(f"{self._texts.sources}:", "bold")
        for number, citation in enumerate(self._outcome.citations, start=1):
            rendered = rendered + Rendered(f"\n{number}. ")
            if citation.url:
                link = styled(citation.title, "text_link")
                entity = link.entities[0].copy_with(url=citation.url)
                rendered = rendered + Rendered(link.text, (entity,))
            else:
                rendered = rendered + Rendered(citation.title)
        return rendered


class ReplyStreamers:
    """Makes the streamer of each answer: edits or native drafts, paced for private chats or groups."""

    def __init__(
        self,
        outbox: Outbox,
        typing: TypingIndicator,
        clock: Clock,
        *,
        drafts: bool,
        private_interval: float,
        group_interval: float,
        retry_buttons: RetryButtons | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._outbox = outbox
        self._retry_buttons = retry_buttons
        self._typing = typing
        self._clock = clock
        self._drafts = drafts
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._notice_rate = NoticeRate(clock)  # shared by every answer waiting in line

    def __call__(
        self,
        target: ChatTarget,
        texts: Texts,
        *,
        on_progress: ProgressCallback | None = None,
        message_ids: Sequence[int] = (),
    ) -> ReplyStreamer:
        interval = self._private_interval if target.is_private else self._group_interval
        # Drafts exist in private chats only; an answer already on screen is continued by editing it.
        drafts = self._drafts and target.is_private and not message_ids
        # Draft ids only need to differ between answers in one chat; the user's message id does.
        draft_id = (target.reply_to_message_id or 1) if drafts else None
        surface = ReplySurface(
            self._outbox.streaming(target, interval=interval),
            stop_label=texts.stop_button,
            draft_id=draft_id,
            message_ids=message_ids,
        )
        on_saved = None
        if self._retry_buttons is not None and not message_ids:  # not for answers closed after a crash
            on_saved = functools.partial(
                self._retry_buttons.move_to, self._outbox.to(target), label=texts.retry_button
            )
        return ReplyStreamer(
            surface,
            texts,
            clock=self._clock,
            typing=self._typing,
            on_progress=on_progress,
            on_saved=on_saved,
            notice_rate=self._notice_rate,
            watch=StreamWatch(self._metrics, self._clock.now),
        )
