"""Magic filters (`F.text`, `F.data == …`) checked on the event loop instead of in a worker thread."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class OnLoop(Filter):
    """A magic filter, resolved right here on the event loop.

    aiogram runs every filter that is not a coroutine function through `asyncio.to_thread`, a bare magic
    filter included, so each `F.…` a message is checked against costs a round trip through the thread
    pool and the GIL handovers that come with it. Resolving a magic filter is a few attribute lookups;
    the hop costs far more, and in a burst of questions it delayed every chat's first sign of life
    (docs/performance.md, "First sign"). Same result as the bare filter: whatever `resolve` returns.
    """

    __slots__ = ("_magic",)

    def __init__(self, magic: MagicFilter) -> None:
        self._magic = magic

    async def __call__(self, event: TelegramObject) -> Any:
        return self._magic.resolve(event)

    def __str__(self) -> str:
        return self._signature_to_string(magic=self._magic)
