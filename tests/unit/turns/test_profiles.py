"""A chat's assistant: stored choices resolved against the modes and ALLOWED_MODELS, per answer."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.assistant.client import RequestOptions
from bot.assistant.modes import Mode, ModeBook
from bot.config import complete_model_uri
from bot.keys import RedisKeys
from bot.texts import ENGLISH, RUSSIAN
from bot.threads.chat_settings import ChatSettingsStore
from bot.turns.profiles import OWN_INSTRUCTIONS_HEADER, ChatProfiles, mode_listing, overview

MODES = ModeBook(
    (
        Mode("plain", "Just answers", "Answer plainly."),
        Mode("poet", "Rhymes", "Answer in verse.", model="yandexgpt-5-lite", temperature=0.9),
    ),
    "test",
)


def profiles_on(redis: Redis, keys: RedisKeys, allowed: tuple[str, ...] = ("gpt-oss-120b",)) -> ChatProfiles:
    return ChatProfiles(
        ChatSettingsStore(redis, keys=keys),
        modes=MODES,
        allowed_models=allowed,
        default_model="yandexgpt-5.1",
        default_temperature=0.3,
        model_uri=lambda name: complete_model_uri(name, "b1gf"),
    )


async def test_a_new_chat_gets_the_first_mode_and_the_bot_defaults(redis: Redis, keys: RedisKeys) -> None:
    profiles = profiles_on(redis, keys)
    assert await profiles.options("1") == RequestOptions("gpt://b1gf/yandexgpt-5.1", "Answer plainly.", 0.3)


async def test_the_mode_brings_its_model_and_temperature_and_a_chosen_model_wins(
    redis: Redis, keys: RedisKeys
) -> None:
    profiles = profiles_on(redis, keys)
    await profiles.choose_mode("1", MODES.modes[1])
    assert await profiles.options("1") == RequestOptions(
        "gpt://b1gf/yandexgpt-5-lite", "Answer in verse.", 0.9
    )
    await profiles.choose_model("1", "gpt-oss-120b")
    profile = await profiles.profile("1")
    assert profile.model_uri == "gpt://b1gf/gpt-oss-120b" and profile.model_chosen
    await profiles.choose_model("1", None)
    assert (await profiles.profile("1")).model == "yandexgpt-5-lite"


async def test_own_instructions_come_after_the_mode(redis: Redis, keys: RedisKeys) -> None:
    profiles = profiles_on(redis, keys)
    await profiles.set_instructions("1", "Call me Captain.")
    options = await profiles.options("1")
    assert options.instructions == f"Answer plainly.\n\n{OWN_INSTRUCTIONS_HEADER}\nCall me Captain."
    await profiles.reset("1")
    assert (await profiles.options("1")).instructions == "Answer plainly."


async def test_choices_the_owner_removed_fall_back_to_the_defaults(redis: Redis, keys: RedisKeys) -> None:
    store = ChatSettingsStore(redis, keys=keys)
    await store.set_mode("1", "retired-mode")
    await store.set_model("1", "retired-model")
    profile = await profiles_on(redis, keys).profile("1")
    assert profile.mode.name == "plain" and profile.model == "yandexgpt-5.1" and not profile.model_chosen


async def test_models_are_found_by_entry_or_uri(redis: Redis, keys: RedisKeys) -> None:
    profiles = profiles_on(redis, keys, allowed=("gpt-oss-120b", "gpt://other/qwen"))
    assert profiles.find_model("GPT-OSS-120B") == "gpt-oss-120b"
    assert profiles.find_model("gpt://b1gf/gpt-oss-120b") == "gpt-oss-120b"
    assert profiles.find_model("gpt://other/qwen") == "gpt://other/qwen"
    assert profiles.find_model("qwen") is None


async def test_the_words_people_see(redis: Redis, keys: RedisKeys) -> None:
    profiles = profiles_on(redis, keys)
    await profiles.choose_mode("1", MODES.modes[1])
    profile = await profiles.profile("1")
    listing = mode_listing(profile, MODES, ENGLISH)
    assert listing.splitlines()[0] == "Mode of this chat: poet"
    assert "• plain — Just answers" in listing and "✓ poet — Rhymes" in listing
    shown = overview(profile, RUSSIAN)
    assert "Режим: poet — Rhymes" in shown and "Модель: yandexgpt-5-lite" in shown and "0.9" in shown
