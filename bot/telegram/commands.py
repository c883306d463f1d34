"""The command menu Telegram shows, in every language the bot speaks."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand

from bot.texts import ENGLISH, LANGUAGES


async def publish_commands(bot: Bot) -> None:
    """English is the default menu; every other language gets its own."""
    for language, texts in LANGUAGES.items():
        commands = [BotCommand(command=name, description=text) for name, text in texts.commands.items()]
        await bot.set_my_commands(commands, language_code=None if texts is ENGLISH else language)
