"""An in-process HTTP fake of Yandex AI Studio's OpenAI-compatible API: Responses, Files, Vector Stores.

The fake is driven by the real ``openai.AsyncOpenAI`` client, so it speaks the wire format the
client parses: ``event: <type>\\ndata: <json>\\n\\n`` server-sent events with a ``type`` and an
increasing ``sequence_number`` in every payload, and OpenAI-style JSON error bodies for HTTP errors.

Typical use::

    fake = FakeYandex()
    await fake.start()
    fake.script(Reply(text="Hi there. How are you?", chunk_size=0))
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-api-key", project=fake.folder_id)
    ...
    await fake.stop()

Files and vector stores live in memory (:attr:`FakeYandex.files`, :attr:`FakeYandex.vector_stores`).
Indexing of an attached file takes :attr:`FakeYandex.indexing_seconds` and can be scripted to fail with
:meth:`FakeYandex.fail_indexing`; search ranks passages of the uploaded text by keyword overlap; and
``fake.responder = fake.cite_best_match("text")`` makes answers cite the best-matching uploaded file.
"""

from __future__ import annotations

from tests.fakes.yandex.files import MAX_FILE_BYTES, FakeFile, FakeStoreFile, FakeVectorStore
from tests.fakes.yandex.responses import FAILURES, UNSUPPORTED_PARAMS, RecordedRequest, Reply, split_chunks
from tests.fakes.yandex.server import FakeYandex

__all__ = [
    "FAILURES",
    "MAX_FILE_BYTES",
    "UNSUPPORTED_PARAMS",
    "FakeFile",
    "FakeStoreFile",
    "FakeVectorStore",
    "FakeYandex",
    "RecordedRequest",
    "Reply",
    "split_chunks",
]
