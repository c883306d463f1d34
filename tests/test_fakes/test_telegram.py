"""The Telegram fake must behave like the real Bot API for the unmodified aiogram client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
)

from tests.fakes.telegram import FakeTelegram

CHAT = 1001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    return Bot(token or fake.token, session=session)


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = make_bot(fake)
    yield client
    await client.session.close()


async def test_get_me(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (fake.bot_id, True, fake.bot_username)
    assert fake.calls_of("getMe")[0].status == 200


async def test_wrong_token_and_unknown_method(fake: FakeTelegram) -> None:
    stranger = make_bot(fake, token="999:WRONG")
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await stranger.get_me()
    await stranger.session.close()
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{fake.base_url}/bot{fake.token}/noSuchMethod")
        assert resp.status == 404
        assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # Other clients post JSON bodies with already-structured values.
        body = {"chat_id": CHAT, "text": "json", "entities": [{"type": "bold", "offset": 0, "length": 4}]}
        resp = await http.post(f"{fake.base_url}/bot{fake.token}/sendMessage", json=body)
        assert (await resp.json())["result"]["entities"][0]["type"] == "bold"


async def test_send_message_with_entities(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_message(CHAT, "hi")
    entities = [MessageEntity(type="bold", offset=0, length=5)]
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]])
    msg = await bot.send_message(CHAT, "Hello 👋 world", entities=entities, reply_markup=markup)
    assert msg.message_id == 2  # ids are shared with the user's message in the chat
    assert msg.from_user is not None and msg.from_user.id == fake.bot_id
    assert [(e.type, e.offset, e.length) for e in msg.entities or []] == [("bold", 0, 5)]
    assert msg.reply_markup is not None and msg.reply_markup.inline_keyboard[0][0].callback_data == "go"
    [sent] = fake.bot_messages(CHAT)
    assert sent.text == "Hello 👋 world"
    assert sent.entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    assert fake.calls_of("sendMessage", chat_id=CHAT)[0].params["entities"][0]["type"] == "bold"


async def test_entity_out_of_bounds_counts_utf16(bot: Bot) -> None:
    # "👋" is two UTF-16 code units, so length 3 covers the whole text but 4 does not.
    await bot.send_message(CHAT, "a👋", entities=[MessageEntity(type="italic", offset=0, length=3)])
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHAT, "a👋", entities=[MessageEntity(type="italic", offset=0, length=4)])


async def test_message_is_too_long_and_empty(bot: Bot) -> None:
    await bot.send_message(CHAT, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, " \n ")


async def test_reply_to_missing_message(bot: Bot, fake: FakeTelegram) -> None:
    user_msg = fake.user_message(CHAT, "question")
    reply = await bot.send_message(
        CHAT, "answer", reply_parameters=ReplyParameters(message_id=user_msg["message_id"])
    )
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "question"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(CHAT, "x", reply_parameters=ReplyParameters(message_id=999))
    lenient = ReplyParameters(message_id=999, allow_sending_without_reply=True)
    assert (await bot.send_message(CHAT, "x", reply_parameters=lenient)).reply_to_message is None


async def test_edit_not_modified_and_not_found(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_message(CHAT, "draft")
    edited = await bot.edit_message_text(text="final", chat_id=CHAT, message_id=msg.message_id)
    assert not isinstance(edited, bool) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message content"):
        await bot.edit_message_text(text="final", chat_id=CHAT, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="final", chat_id=CHAT, message_id=12345)
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.edit_message_text(text="y" * 5000, chat_id=CHAT, message_id=msg.message_id)
    [sent] = fake.bot_messages(CHAT)
    assert [text for text, _ in sent.history] == ["draft", "final"]
    assert [c.status for c in fake.calls_of("editMessageText")] == [200, 400, 400, 400]


async def test_delete_message(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_message(CHAT, "bye")
    assert await bot.delete_message(CHAT, msg.message_id) is True
    assert fake.bot_messages(CHAT) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, msg.message_id)


async def test_fail_next_retry_after(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next(
        "sendMessage", error_code=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    with pytest.raises(TelegramRetryAfter) as exc_info:
        await bot.send_message(CHAT, "hello")
    assert exc_info.value.retry_after == 7
    await bot.send_message(CHAT, "hello")  # only the next call was scripted to fail
    assert fake.flood_count() == 1


async def test_fail_next_scoped_to_chat(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", error_code=404, description="Not Found", chat_id=2, times=2)
    await bot.send_message(CHAT, "unaffected")
    for _ in range(2):
        with pytest.raises(TelegramNotFound):
            await bot.send_message(2, "x")
    await bot.send_message(2, "ok now")


async def test_blocked_chat(bot: Bot, fake: FakeTelegram) -> None:
    fake.block_chat(CHAT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hello")


async def test_private_flood_control() -> None:
    fake = FakeTelegram(private_interval=1.0)
    await fake.start()
    bot = make_bot(fake)
    try:
        for i in range(3):  # the burst allowance
            await bot.send_message(CHAT, f"m{i}")
        with pytest.raises(TelegramRetryAfter) as exc_info:
            await bot.send_message(CHAT, "too fast")
        assert exc_info.value.retry_after == 1
        await bot.send_message(CHAT + 1, "another chat has its own budget")
        assert fake.flood_count() == 1
        assert [c.status for c in fake.calls_of("sendMessage", chat_id=CHAT)] == [200, 200, 200, 429]
    finally:
        await bot.session.close()
        await fake.stop()


async def test_group_flood_control() -> None:
    fake = FakeTelegram(group_per_minute=2)
    await fake.start()
    bot = make_bot(fake)
    try:
        await bot.send_message(-100, "a")
        await bot.send_message(-100, "b")
        with pytest.raises(TelegramRetryAfter) as exc_info:
            await bot.send_message(-100, "c")
        assert 58 <= exc_info.value.retry_after <= 60
    finally:
        await bot.session.close()
        await fake.stop()


async def test_get_updates_long_polling(bot: Bot, fake: FakeTelegram) -> None:
    started = time.monotonic()
    assert await bot(GetUpdates(timeout=1)) == []
    assert time.monotonic() - started >= 0.9

    poll = asyncio.create_task(bot(GetUpdates(timeout=10)))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    fake.command(CHAT, "history", "3")
    updates = await poll
    assert time.monotonic() - started < 1
    [update] = updates
    assert update.message is not None and update.message.text == "/history 3"
    assert update.message.entities is not None and update.message.entities[0].type == "bot_command"

    # Confirming via offset drops the update.
    assert await bot(GetUpdates(offset=update.update_id + 1, timeout=0)) == []
    assert fake.pending_updates() == []


async def test_user_message_in_forum_topic(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_message(-200, "topic", chat_type="supergroup", message_thread_id=5)
    [update] = await bot(GetUpdates(timeout=0))
    assert update.message is not None
    assert update.message.chat.is_forum and update.message.is_topic_message
    assert update.message.message_thread_id == 5


async def test_markup_from_the_bot_is_refused(bot: Bot, fake: FakeTelegram) -> None:
    # Merges the three parse-mode tests of the parsers this fake had: the bot sends entities only, so the
    # fake refuses every parse_mode (and keeps no markup parser) to make "model output is never markup" a
    # property every e2e test checks.
    for mode in ("HTML", "MarkdownV2", "Markdown"):
        with pytest.raises(TelegramBadRequest, match=r"parse_mode .* is not accepted"):
            await bot.send_message(CHAT, "<b>bold</b>", parse_mode=mode)
    sent = await bot.send_message(
        CHAT, "<b>bold</b>", entities=[MessageEntity(type="bold", offset=0, length=3)]
    )
    assert sent.text == "<b>bold</b>"
    with pytest.raises(TelegramBadRequest, match="parse_mode"):
        await bot.send_document(
            CHAT, BufferedInputFile(b"x", filename="x.txt"), caption="c", parse_mode="HTML"
        )
    assert [message.text for message in fake.bot_messages(CHAT)] == ["<b>bold</b>"]


async def test_set_my_commands_per_language(bot: Bot, fake: FakeTelegram) -> None:
    await bot.set_my_commands([BotCommand(command="history", description="Show history")])
    await bot.set_my_commands([BotCommand(command="history", description="История")], language_code="ru")
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand(command="new", description="New")], scope=scope)
    assert fake.commands_for()[0]["description"] == "Show history"
    assert fake.commands_for("ru") == [{"command": "history", "description": "История"}]
    assert fake.commands_for(scope={"type": "all_private_chats"})[0]["command"] == "new"
    assert len(fake.commands) == 3
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["История"]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


async def test_chat_action_and_draft(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.send_chat_action(CHAT, "typing") is True
    assert fake.chat_actions(CHAT) == ["typing"]
    assert await bot.send_message_draft(chat_id=CHAT, draft_id=7, text="partial") is True
    assert fake.drafts(CHAT)[0]["text"] == "partial"
    with pytest.raises(TelegramBadRequest, match="can't send drafts to this chat"):
        await bot.send_message_draft(chat_id=-5, draft_id=7, text="x")


async def test_file_download(bot: Bot, fake: FakeTelegram) -> None:
    document = fake.add_file(b"hello file", "notes.txt", "text/plain")
    fake.user_message(CHAT, None, extra={"document": document})
    [update] = await bot(GetUpdates(timeout=0))
    assert update.message is not None and update.message.document is not None
    data = await bot.download(update.message.document)
    assert data is not None and data.read() == b"hello file"

    big = fake.add_file(b"x", "big.bin", "application/octet-stream", declared_size=25 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big["file_id"])


async def test_send_document_roundtrip(bot: Bot, fake: FakeTelegram) -> None:
    upload = BufferedInputFile(b"a,b\n1,2\n", filename="table.csv")
    msg = await bot.send_document(CHAT, upload, caption="  table ")
    assert msg.document is not None and msg.document.file_name == "table.csv"
    assert msg.caption == "table"
    [sent] = fake.bot_messages(CHAT)
    assert sent.document is not None and sent.caption == "table"
    downloaded = await bot.download(msg.document)
    assert downloaded is not None and downloaded.read() == b"a,b\n1,2\n"


async def test_wait_until_times_out_with_message(fake: FakeTelegram) -> None:
    with pytest.raises(AssertionError, match=r"not met within 0\.05s"):
        await fake.wait_until(lambda: False, timeout=0.05)


async def test_get_chat_member_statuses_parse_as_aiogram_types(bot: Bot, fake: FakeTelegram) -> None:
    group = -100777
    fake.user_message(group, "hi", chat_type="supergroup", user_id=1)
    fake.set_member(group, 2, "creator", custom_title="Boss")
    fake.set_member(group, 3, "administrator")
    fake.set_member(group, 4, "restricted", can_send_messages=False)
    fake.set_member(group, 5, "kicked", until_date=0)
    fake.callback_query(1001, 1, "x", user_id=6)  # seen, but never in the group

    expected = {
        1: ChatMemberMember,
        2: ChatMemberOwner,
        3: ChatMemberAdministrator,
        4: ChatMemberRestricted,
        5: ChatMemberBanned,
        6: ChatMemberLeft,
    }
    for user_id, kind in expected.items():
        member = await bot.get_chat_member(group, user_id)
        assert isinstance(member, kind), (user_id, member)
        assert member.user.id == user_id
    owner = await bot.get_chat_member(group, 2)
    assert isinstance(owner, ChatMemberOwner) and owner.custom_title == "Boss"
    restricted = await bot.get_chat_member(group, 4)
    assert isinstance(restricted, ChatMemberRestricted) and not restricted.can_send_messages
    fake.set_member(group, 3, "member")  # demoted
    assert (await bot.get_chat_member(group, 3)).status == "member"


async def test_get_chat_member_errors_and_private_chats(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_message(CHAT, "hello")
    assert (await bot.get_chat_member(CHAT, CHAT)).status == "member"
    with pytest.raises(TelegramBadRequest, match="user not found"):
        await bot.get_chat_member(CHAT, 424242)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat_member(-100999, CHAT)
    with pytest.raises(ValueError, match="unknown status"):
        fake.set_member(-100999, 1, "owner")


async def test_users_voice_notes_audio_and_photos_download(bot: Bot, fake: FakeTelegram) -> None:
    voice = fake.add_voice(b"OggS voice", duration=3)
    audio = fake.add_audio(b"ID3 song", file_name="song.mp3", mime_type="audio/mpeg", duration=7)
    sizes = fake.add_photo(b"\xff\xd8\xff big", width=1280, height=720, thumbnail=b"\xff\xd8\xff small")
    for extra in ({"voice": voice}, {"audio": audio}, {"photo": sizes, "caption": "look"}):
        fake.user_message(CHAT, None, extra=extra)
    updates = await bot(GetUpdates(timeout=0))
    messages = [update.message for update in updates]
    assert all(message is not None for message in messages)
    first, second, third = messages
    assert first and first.voice and first.voice.duration == 3 and first.voice.mime_type == "audio/ogg"
    assert second and second.audio and second.audio.mime_type == "audio/mpeg"
    assert third and third.photo and [size.width for size in third.photo] == [90, 1280]
    assert third.caption == "look"
    downloads = [
        await bot.download(item) for item in (first.voice, second.audio, third.photo[0], third.photo[-1])
    ]
    assert [d.read() if d else None for d in downloads] == [
        b"OggS voice",
        b"ID3 song",
        b"\xff\xd8\xff small",
        b"\xff\xd8\xff big",
    ]
    # Telegram serves bots files up to 20 MB; a bigger one has no file path to download from.
    big = fake.add_voice(b"OggS", duration=1, declared_size=21 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big["file_id"])


async def test_send_voice_and_photo_multipart(bot: Bot, fake: FakeTelegram) -> None:
    question = fake.user_message(CHAT, "hi")
    reply = ReplyParameters(message_id=question["message_id"])
    voice = await bot.send_voice(
        CHAT, BufferedInputFile(b"OggS...", filename="a.ogg"), caption="cut", reply_parameters=reply
    )
    assert voice.voice is not None and voice.caption == "cut"
    photo = await bot.send_photo(
        CHAT, BufferedInputFile(b"\xff\xd8\xff jpeg", filename="p.jpg"), caption="fox"
    )
    assert photo.photo and photo.caption == "fox"
    sent_voice, sent_photo = fake.bot_messages(CHAT)
    assert sent_voice.content == b"OggS..." and sent_voice.reply_to_message_id == question["message_id"]
    assert sent_photo.content == b"\xff\xd8\xff jpeg" and sent_photo.photo is not None
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"not an image", filename="p.jpg"))
    with pytest.raises(TelegramBadRequest, match="file must be non-empty"):
        await bot.send_voice(CHAT, BufferedInputFile(b"", filename="a.ogg"))
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(CHAT, BufferedInputFile(b"\xff\xd8\xff", filename="p.jpg"), caption="x" * 1025)
    fake.block_chat(CHAT)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_voice(CHAT, BufferedInputFile(b"OggS", filename="a.ogg"))


async def test_entities_beyond_the_100th_are_silently_ignored(bot: Bot, fake: FakeTelegram) -> None:
    text = " ".join(f"w{n}" for n in range(150))
    entities = [
        MessageEntity(type="bold", offset=text.index(f"w{n} ") if n < 149 else len(text) - 4, length=2)
        for n in range(150)
    ]
    message = await bot.send_message(CHAT, text, entities=entities)  # no error, as in Telegram
    assert len(message.entities or []) == 100
    assert len(fake.bot_messages(CHAT)[0].entities) == 100
    assert fake.ignored_entities == [(CHAT, 50)]
