"""Each chat's own choices (mode, instructions, model, spoken answers) in Redis, apart from its thread
(keys: `bot.keys`).

A chat key (`ChatTarget.key`) has them per forum topic too. They have no expiry and `/reset`, which
erases the thread, leaves them alone; `clear()` (`/settings reset`) is what restores the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.storage import text

MAX_INSTRUCTIONS_CHARS = 3000

_MODE, _INSTRUCTIONS, _MODEL, _VOICE = "mode", "instructions", "model", "voice"
_ON, _OFF = "on", "off"


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What a chat chose; None everywhere: the defaults."""

    mode: str | None = None
    instructions: str | None = None
    model: str | None = None
    voice: bool | None = None  # spoken answers (/voice); None: VOICE_REPLIES decides

    @property
    def is_default(self) -> bool:
        return self.mode is None and self.instructions is None and self.model is None and self.voice is None


class ChatSettingsStore:
    """Hash `chat:<chat key>:settings`: one field per choice, absent while the chat keeps the default."""

    def __init__(self, redis: Redis, *, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, chat_key: str) -> ChatSettings:
        raw = await self._redis.hgetall(self._keys.chat_settings(chat_key))
        return ChatSettings(
            mode=text(raw.get(_MODE)) or None,
            instructions=text(raw.get(_INSTRUCTIONS)) or None,
            model=text(raw.get(_MODEL)) or None,
            voice={_ON: True, _OFF: False}.get(text(raw.get(_VOICE)) or ""),
        )

    async def set_mode(self, chat_key: str, mode: str | None) -> None:
        await self._set(chat_key, _MODE, mode)

    async def set_instructions(self, chat_key: str, instructions: str | None) -> None:
        if instructions is not None and len(instructions) > MAX_INSTRUCTIONS_CHARS:
            raise ValueError(f"instructions longer than {MAX_INSTRUCTIONS_CHARS} characters")
        await self._set(chat_key, _INSTRUCTIONS, instructions)

    async def set_model(self, chat_key: str, model: str | None) -> None:
        await self._set(chat_key, _MODEL, model)

    async def set_voice(self, chat_key: str, voice: bool | None) -> None:
        await self._set(chat_key, _VOICE, None if voice is None else (_ON if voice else _OFF))

    async def clear(self, chat_key: str) -> None:
        await self._redis.delete(self._keys.chat_settings(chat_key))

    async def _set(self, chat_key: str, name: str, value: str | None) -> None:
        key = self._keys.chat_settings(chat_key)
        if value is None or not value.strip():
            await self._redis.hdel(key, name)
        else:
            await self._redis.hset(key, name, value)
