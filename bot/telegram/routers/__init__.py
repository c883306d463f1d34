"""Telegram handlers, one router per concern; each stays thin and hands over to the logic classes.

Dependencies (`runner`, `store`, …) arrive as aiogram workflow data set by the composition root.
"""

from __future__ import annotations

from aiogram import Router

from bot.telegram.routers import basics, conversation, history, knowledge, media, settings, usage


def build_routers() -> list[Router]:
    """In order: commands and documents first, the catch-all question handler last."""
    return [
        basics.router(),
        history.router(),
        knowledge.router(),
        settings.router(),
        usage.router(),
        media.router(),
        conversation.router(),
    ]
