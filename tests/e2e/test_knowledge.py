"""End to end: the admin fills the knowledge base from Telegram, and answers cite its documents."""

from __future__ import annotations

import asyncio

from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex

ADMIN = 4242
USER = 5151
HANDBOOK = (
    b"# Company handbook\n\nVacation: every employee has 28 days of paid vacation per year.\n\n"
    b"Remote work: allowed two days a week after the probation period.\n"
)


def send_document(telegram: FakeTelegram, chat_id: int, content: bytes, name: str, **kw: object) -> dict:
    document = telegram.add_file(content, name, "application/octet-stream", **kw)  # type: ignore[arg-type]
    return telegram.user_message(chat_id, None, extra={"document": document})


async def test_admin_uploads_a_document_and_answers_cite_it(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    await run_bot(admin_user_ids=str(ADMIN))
    send_document(telegram, ADMIN, HANDBOOK, "handbook.md")
    await telegram.wait_until(
        lambda: telegram.bot_texts(ADMIN) == ["📄 handbook.md: ✅ ready: I can answer from it now."],
        timeout=10,
    )
    [status] = telegram.bot_messages(ADMIN)
    stages = [text for text, _ in status.history]
    assert stages[0] == "📄 handbook.md: ⬆️ uploading…"
    assert "📄 handbook.md: ⏳ indexing…" in stages
    [stored] = yandex.files.values()
    assert stored.filename == "handbook.md"

    yandex.responder = yandex.cite_best_match("Every employee has 28 days of paid vacation.")
    telegram.user_message(USER, "How many vacation days do we get?")
    await telegram.wait_until(lambda: any("Sources:" in text for text in telegram.bot_texts(USER)))
    assert telegram.bot_texts(USER) == [
        "Every employee has 28 days of paid vacation.\n\nSources:\n1. handbook.md"
    ]
    request = yandex.requests[-1].body
    [tool] = request["tools"]
    assert tool["type"] == "file_search" and tool["max_num_results"] == 5
    assert tool["vector_store_ids"] == list(yandex.vector_stores)
    assert "knowledge base" in request["instructions"]


async def test_documents_are_processed_in_order_and_failures_reported(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.fail_indexing("broken.txt", code="invalid_file", message="The file could not be parsed")
    await run_bot(admin_user_ids=str(ADMIN))
    send_document(telegram, ADMIN, b"first file", "a.txt")
    send_document(telegram, ADMIN, b"garbage", "broken.txt")
    send_document(telegram, ADMIN, b"third file", "c.txt")
    await telegram.wait_until(
        lambda: (
            len(telegram.bot_texts(ADMIN)) == 3
            and all("✅" in text or "❌" in text for text in telegram.bot_texts(ADMIN))
        ),
        timeout=10,
    )
    final = telegram.bot_texts(ADMIN)
    assert final[0] == "📄 a.txt: ✅ ready: I can answer from it now."
    assert final[1].startswith("📄 broken.txt: ❌ not added:") and "could not be parsed" in final[1]
    assert final[2] == "📄 c.txt: ✅ ready: I can answer from it now."
    uploads = [call for call in yandex.calls if call == ("POST", "/v1/files")]
    assert len(uploads) == 3


async def test_uploads_are_refused_clearly(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    await run_bot(admin_user_ids=str(ADMIN))
    send_document(telegram, USER, HANDBOOK, "handbook.md")
    send_document(telegram, ADMIN, b"MZ binary", "tool.exe")
    send_document(telegram, ADMIN, b"big", "huge.pdf", declared_size=25 * 2**20)
    await telegram.wait_until(lambda: telegram.bot_texts(USER) and len(telegram.bot_texts(ADMIN)) == 2)
    assert telegram.bot_texts(USER) == ["Only the bot's owner can add or manage documents."]
    unsupported, huge = telegram.bot_texts(ADMIN)
    assert unsupported.startswith("📄 tool.exe: ❌ not added: tool.exe: this file type cannot be indexed")
    assert huge.startswith("huge.pdf: Telegram lets bots download files up to 20 MB.")
    await asyncio.sleep(0.2)
    assert not yandex.files, "nothing refused was uploaded"


async def test_kb_lists_deletes_and_searches(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    await run_bot(admin_user_ids=str(ADMIN))
    telegram.command(ADMIN, "/kb")
    await telegram.wait_until(lambda: len(telegram.bot_texts(ADMIN)) == 1)
    assert telegram.bot_texts(ADMIN)[0].startswith("The knowledge base is empty.")

    for name in ("handbook.md", "notes.txt"):
        send_document(telegram, ADMIN, HANDBOOK if name == "handbook.md" else b"Parking is free.", name)
    await telegram.wait_until(lambda: sum("✅" in text for text in telegram.bot_texts(ADMIN)) == 2)

    telegram.command(ADMIN, "/kb search vacation days")
    await telegram.wait_until(
        lambda: any("Best matching passages" in text for text in telegram.bot_texts(ADMIN))
    )
    result = telegram.bot_texts(ADMIN)[-1]
    assert "handbook.md" in result and "28 days of paid vacation" in result

    telegram.command(ADMIN, "/kb")
    await telegram.wait_until(
        lambda: telegram.bot_texts(ADMIN)[-1].startswith("Knowledge base: 2 document(s)")
    )
    listing = telegram.bot_messages(ADMIN)[-1]
    assert "1. handbook.md" in listing.text and "2. notes.txt" in listing.text
    buttons = [button for row in listing.reply_markup["inline_keyboard"] for button in row]
    assert all(len(button["callback_data"].encode()) <= 64 for button in buttons)

    telegram.callback_query(ADMIN, listing.message_id, buttons[0]["callback_data"])
    await telegram.wait_until(
        lambda: telegram.bot_messages(ADMIN)[-1].text.startswith("Knowledge base: 1 document(s)")
    )
    assert "notes.txt" in telegram.bot_messages(ADMIN)[-1].text
    assert [file.filename for file in yandex.files.values()] == ["notes.txt"]

    telegram.callback_query(ADMIN, listing.message_id, buttons[0]["callback_data"])  # stale: already gone
    await telegram.wait_until(lambda: len(telegram.callback_answers) == 2)

    telegram.command(USER, "/kb")
    await telegram.wait_until(
        lambda: telegram.bot_texts(USER) == ["Only the bot's owner can add or manage documents."]
    )
