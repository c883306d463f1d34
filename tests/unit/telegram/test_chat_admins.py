"""Who may change a chat's assistant, asked of the Telegram fake through the real aiogram client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Chat, User

from bot.telegram.chat_admins import CACHE_SECONDS, AdminCheckFailed, ChatAdmins
from tests.fakes.telegram import FakeTelegram
from tests.helpers import FakeClock

GROUP = -100555


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(telegram.token, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    yield client
    await client.session.close()


def group() -> Chat:
    return Chat(id=GROUP, type="supergroup", title="Group")


def user(user_id: int) -> User:
    return User(id=user_id, is_bot=False, first_name="U")


async def test_creators_and_administrators_may_members_may_not(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.user_message(GROUP, "hello", chat_type="supergroup", user_id=1)
    telegram.set_member(GROUP, 2, "creator")
    telegram.set_member(GROUP, 3, "administrator")
    telegram.set_member(GROUP, 4, "restricted")
    admins = ChatAdmins(bot, FakeClock())
    assert [await admins.may_configure(group(), user(n)) for n in (1, 2, 3, 4)] == [False, True, True, False]


async def test_private_chats_bot_admins_and_anonymous_admins_need_no_call(
    telegram: FakeTelegram, bot: Bot
) -> None:
    admins = ChatAdmins(bot, FakeClock())
    private = Chat(id=9, type="private")
    assert await admins.may_configure(private, user(9))
    assert await admins.may_configure(group(), user(1), bot_admin=True)
    assert await admins.may_configure(group(), None, sender_chat=group())
    assert not await admins.may_configure(group(), None)
    assert not telegram.calls_of("getChatMember")


async def test_the_answer_is_remembered_briefly(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.set_member(GROUP, 3, "administrator")
    clock = FakeClock()
    admins = ChatAdmins(bot, clock)
    assert await admins.is_admin(GROUP, 3)
    telegram.set_member(GROUP, 3, "member")  # demoted
    assert await admins.is_admin(GROUP, 3), "cached"
    assert len(telegram.calls_of("getChatMember")) == 1
    clock.time += CACHE_SECONDS + 1
    assert not await admins.is_admin(GROUP, 3)
    assert len(telegram.calls_of("getChatMember")) == 2


async def test_a_failed_check_is_reported_not_guessed(telegram: FakeTelegram, bot: Bot) -> None:
    admins = ChatAdmins(bot, FakeClock())
    with pytest.raises(AdminCheckFailed):
        await admins.is_admin(-100999, 3)  # a chat Telegram does not know
    telegram.set_member(GROUP, 3, "administrator")
    telegram.fail_next("getChatMember", error_code=500, description="Internal Server Error")
    with pytest.raises(AdminCheckFailed):
        await admins.is_admin(GROUP, 3)
    assert await admins.is_admin(GROUP, 3), "a failure is not cached"
