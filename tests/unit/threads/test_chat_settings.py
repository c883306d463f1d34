"""Each chat's own choices in Redis: per chat key, kept by /reset, cleared by /settings reset."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.threads.chat_settings import MAX_INSTRUCTIONS_CHARS, ChatSettings, ChatSettingsStore
from bot.threads.store import ThreadStore


async def test_choices_are_kept_per_chat_key_and_cleared_together(redis: Redis, keys: RedisKeys) -> None:
    store = ChatSettingsStore(redis, keys=keys)
    assert (await store.get("-100:10")).is_default
    await store.set_mode("-100:10", "translator")
    await store.set_instructions("-100:10", "Answer in rhyme.")
    await store.set_model("-100:10", "yandexgpt-5-lite")
    await store.set_mode("-100:20", "editor")
    assert await store.get("-100:10") == ChatSettings("translator", "Answer in rhyme.", "yandexgpt-5-lite")
    assert await store.get("-100:20") == ChatSettings(mode="editor")
    assert await redis.ttl(keys.chat_settings("-100:10")) == -1, "settings do not expire"

    await store.set_instructions("-100:10", None)
    await store.set_model("-100:10", "  ")
    assert await store.get("-100:10") == ChatSettings(mode="translator")
    await store.clear("-100:10")
    assert (await store.get("-100:10")).is_default
    assert await store.get("-100:20") == ChatSettings(mode="editor")


async def test_a_thread_reset_keeps_the_settings(redis: Redis, keys: RedisKeys) -> None:
    settings = ChatSettingsStore(redis, keys=keys)
    threads = ThreadStore(redis, keys=keys, ttl_seconds=60)
    await settings.set_mode("5", "code")
    await threads.current_thread("5")
    await threads.reset("5")
    assert (await settings.get("5")).mode == "code"


async def test_instructions_have_a_length_limit(redis: Redis, keys: RedisKeys) -> None:
    store = ChatSettingsStore(redis, keys=keys)
    with pytest.raises(ValueError, match="longer than"):
        await store.set_instructions("5", "x" * (MAX_INSTRUCTIONS_CHARS + 1))
    assert (await store.get("5")).is_default


async def test_spoken_answers_are_a_choice_of_their_own(redis: Redis, keys: RedisKeys) -> None:
    store = ChatSettingsStore(redis, keys=keys)
    await store.set_voice("7", True)
    await store.set_voice("8", False)
    assert await store.get("7") == ChatSettings(voice=True)
    assert await store.get("8") == ChatSettings(voice=False)
    assert not (await store.get("8")).is_default  # off by choice is not "the default"
    await store.set_voice("7", None)
    assert (await store.get("7")).is_default
