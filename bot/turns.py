"""One turn: a user's message in, the assistant's streamed answer out, both kept in the thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.assistant.client import Assistant
from bot.telegram.streamer import ReplyStreamer, StreamOutcome
from bot.telegram.target import ChatTarget
from bot.telegram.texts import Texts
from bot.threads.gate import TurnGate
from bot.threads.models import MessageStatus, ThreadMessage, context_window
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore

log = logging.getLogger(__name__)

StreamerFactory = Callable[[ChatTarget, Texts], ReplyStreamer]


class TurnRunner:
    """Answers a chat's messages one at a time, in order, with the finished turns before as context."""

    def __init__(
        self,
        *,
        store: ThreadStore,
        gate: TurnGate,
        signals: StopSignals,
        assistant: Assistant,
        streamer_factory: StreamerFactory,
        history_max_messages: int,
        history_max_chars: int,
    ) -> None:
        self._store = store
        self._gate = gate
        self._signals = signals
        self._assistant = assistant
        self._streamer_factory = streamer_factory
        self._max_messages = history_max_messages
        self._max_chars = history_max_chars
        self._running: set[asyncio.Task[object]] = set()
        self._streaming: dict[str, ReplyStreamer] = {}

    @property
    def running(self) -> set[asyncio.Task[object]]:
        """Tasks answering or waiting to answer (the app waits for them, then cancels them, at shutdown)."""
        return self._running

    def stop_local(self, chat_key: str) -> bool:
        """Stop the answer this process is streaming in the chat; False when there is none here."""
        streamer = self._streaming.get(chat_key)
        if streamer is None:
            return False
        streamer.stop()
        return True

    async def stop(self, chat_key: str) -> bool:
        """Stop the chat's running answer, in whichever process streams it; False when none is running."""
        if self.stop_local(chat_key):
            return True
        if await self._gate.held(chat_key):
            await self._signals.publish(chat_key)
            return True
        return False

    async def answer(self, target: ChatTarget, text: str, texts: Texts) -> StreamOutcome:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        streamer = self._streamer_factory(target, texts)
        streamer.show_typing()
        try:
            async with self._gate.turn(target.key):
                self._streaming[target.key] = streamer
                try:
                    return await self._answer_in_turn(target, text, streamer)
                finally:
                    del self._streaming[target.key]
        finally:
            streamer.close()
            self._running.discard(task)

    async def _answer_in_turn(self, target: ChatTarget, text: str, streamer: ReplyStreamer) -> StreamOutcome:
        thread_id = await self._store.current_thread(target.key)
        await self._store.append(target.key, thread_id, ThreadMessage("user", text, self._store.now()))
        window = context_window(
            await self._store.messages(thread_id),
            max_messages=self._max_messages,
            max_chars=self._max_chars,
        )
        input_items = [{"role": message.role, "content": message.text} for message in window]
        outcome = await streamer.run(self._assistant.stream(input_items))
        if outcome.failure is not None:
            log.warning("answer in chat %s failed: %s", target.key, outcome.failure.detail)
        if outcome.text.strip():
            answer = ThreadMessage(
                "assistant",
                outcome.text,
                self._store.now(),
                MessageStatus.COMPLETE if outcome.complete else MessageStatus.INCOMPLETE,
                tuple(citation.title for citation in outcome.citations),
            )
            if not await self._store.append(target.key, thread_id, answer):
                log.info("chat %s started a new thread during the answer; not saving it", target.key)
        return outcome
