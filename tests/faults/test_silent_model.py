"""The fault suite: the model goes silent mid-stream for longer than YANDEX_TIMEOUT. The partial text
stays with a notice, the stream is closed (not left hanging on Yandex's side), the next question works."""

from __future__ import annotations

from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import saved_thread

CHAT = 5401
TEXT = "The model starts well, writes a few words and then falls silent for good. Never finished."


async def test_a_model_silent_longer_than_the_timeout_keeps_the_partial_text_with_a_notice(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(
        Reply(text=TEXT, chunk_size=8, delay=0.05, fail_after=40, failure="silent"), "Back to normal."
    )
    app = await run_bot(yandex_timeout=2)
    telegram.user_message(CHAT, "tell me something")
    await telegram.wait_until(lambda: yandex.silent_streams_closed == 1, timeout=20)
    partial = TEXT[:40]
    await telegram.wait_until(
        lambda: (
            (texts := telegram.bot_texts(CHAT)) != []
            and texts[0] != partial
            and texts[0].startswith(partial.strip())
        ),
        timeout=20,
    )
    [reply] = telegram.bot_texts(CHAT)
    notice = reply.removeprefix(partial.strip()).strip()
    assert notice and "⚠️" in notice, reply
    print(f"what the user sees: {reply!r}")
    _question, answer = await saved_thread(app.store, str(CHAT), 2)
    assert answer.status.value == "incomplete" and partial.startswith(answer.text.strip())

    telegram.user_message(CHAT, "and now?")
    await telegram.wait_for_text("Back to normal.", CHAT, timeout=20)
    assert yandex.open_streams == 0
