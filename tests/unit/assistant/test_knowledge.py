"""KnowledgeBase against the Yandex fake (files, vector stores, search) and a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from redis.asyncio import Redis

from bot.assistant.knowledge import (
    MAX_FILE_BYTES,
    STORE_EXPIRY_DAYS,
    DocumentNotFound,
    DocumentStage,
    EmptyDocument,
    FileTooLarge,
    IndexingFailed,
    KnowledgeBase,
    KnowledgeError,
    UnsupportedFileType,
    file_search_tool,
    retrieval_tools,
)
from bot.config import load_settings
from bot.keys import RedisKeys
from tests.fakes.yandex import FakeYandex

HANDBOOK = (
    b"# Staff handbook\n\nEmployees get 28 days of paid vacation per year.\n\n"
    b"Office hours are from nine to six on weekdays.\n"
)
PRICES = b"Prices\n\nThe basic plan costs 500 roubles a month. The premium plan costs 900 roubles.\n"


@pytest.fixture
async def client(yandex: FakeYandex) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        base_url=yandex.base_url, api_key=yandex.api_key, project=yandex.folder_id, max_retries=0, timeout=10
    )
    yield c
    await c.close()


@pytest.fixture
def kb(client: openai.AsyncOpenAI, redis: Redis, redis_prefix: str) -> KnowledgeBase:
    return KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix))


class Stages:
    """A progress callback that remembers what it was told."""

    def __init__(self) -> None:
        self.seen: list[DocumentStage] = []

    async def __call__(self, stage: DocumentStage) -> None:
        self.seen.append(stage)


async def add(kb: KnowledgeBase, name: str, content: bytes, **kwargs: Any) -> Any:
    return await kb.add_document(name, content, poll_interval=0.05, **kwargs)


# --------------------------------------------------------------------- adding


async def test_upload_is_indexed_with_stages_and_the_store_is_created_once(
    kb: KnowledgeBase, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    assert await kb.store_id() is None
    stages = Stages()

    document = await add(kb, "handbook.md", HANDBOOK, progress=stages)

    assert stages.seen == [DocumentStage.UPLOADING, DocumentStage.INDEXING, DocumentStage.READY]
    assert (document.name, document.size, document.status) == ("handbook.md", len(HANDBOOK), "completed")
    assert yandex.files[document.file_id].filename == "handbook.md"  # citations read as the admin knows it
    store_id = await redis.get(f"{redis_prefix}kb:vector_store_id")
    assert store_id is not None and await kb.store_id() == store_id
    store = yandex.vector_stores[store_id]
    assert store.expires_after == {"anchor": "last_active_at", "days": STORE_EXPIRY_DAYS}
    assert list(store.files) == [document.file_id]

    second = await add(kb, "docs/prices.txt", PRICES)

    assert second.name == "prices.txt"  # the local folder is not sent
    assert list(yandex.vector_stores) == [store_id]
    assert list(store.files) == [document.file_id, second.file_id]
    assert yandex.calls.count(("POST", "/v1/vector_stores")) == 1
    record = json.loads(await redis.hget(f"{redis_prefix}kb:documents", second.file_id) or "{}")
    assert record["name"] == "prices.txt" and record["size"] == len(PRICES)
    assert record["status"] == "completed" and record["added_at"] > 0


async def test_two_processes_agree_on_one_store(
    client: openai.AsyncOpenAI, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    first = KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix))
    second = KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix))  # its own lock, as in another process

    a, b = await asyncio.gather(add(first, "a.md", HANDBOOK), add(second, "b.md", PRICES))

    store_id = await first.store_id()
    assert store_id is not None and await second.store_id() == store_id
    assert list(yandex.vector_stores) == [store_id]  # the loser's store was deleted
    assert set(yandex.vector_stores[store_id].files) == {a.file_id, b.file_id}


async def test_configured_store_is_used(
    client: openai.AsyncOpenAI, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    store = await client.vector_stores.create(name="admin's store")
    kb = KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix), configured_store_id=store.id)
    assert await kb.store_id() == store.id

    document = await add(kb, "handbook.md", HANDBOOK)

    assert list(yandex.vector_stores[store.id].files) == [document.file_id]
    assert yandex.calls.count(("POST", "/v1/vector_stores")) == 1  # only the test's own
    assert await redis.get(f"{redis_prefix}kb:vector_store_id") is None


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("setup.exe", b"MZ", UnsupportedFileType),
        ("slides.pptx", b"PK", UnsupportedFileType),
        ("README", b"no extension", UnsupportedFileType),
        ("huge.pdf", b"\0" * (MAX_FILE_BYTES + 1), FileTooLarge),
        ("empty.txt", b"", EmptyDocument),
    ],
)
async def test_refused_before_any_http_call(
    kb: KnowledgeBase, yandex: FakeYandex, name: str, content: bytes, error: type[KnowledgeError]
) -> None:
    stages = Stages()
    with pytest.raises(error) as raised:
        await add(kb, name, content, progress=stages)
    assert name in str(raised.value)
    assert yandex.calls == []
    assert stages.seen == []


async def test_supported_types_are_accepted(kb: KnowledgeBase, yandex: FakeYandex) -> None:
    names = ["a.PDF", "b.docx", "c.xlsx", "d.csv", "e.html", "f.htm", "g.rtf", "h.json", "i.xml", "j.tex"]
    documents = await asyncio.gather(*(add(kb, name, b"some text") for name in names))
    assert [d.status for d in documents] == ["completed"] * len(names)
    assert len(yandex.vector_stores) == 1  # concurrent first uploads in one process share one store


async def test_failed_indexing_is_reported_and_cleaned_up(
    kb: KnowledgeBase, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    await add(kb, "handbook.md", HANDBOOK)
    yandex.fail_indexing("broken.pdf", code="invalid_file", message="The PDF has no text layer")
    stages = Stages()

    with pytest.raises(IndexingFailed, match="The PDF has no text layer") as raised:
        await add(kb, "broken.pdf", b"%PDF-1.4 scanned", progress=stages)

    assert "broken.pdf" in str(raised.value)
    assert stages.seen == [DocumentStage.UPLOADING, DocumentStage.INDEXING, DocumentStage.FAILED]
    assert [f.filename for f in yandex.files.values()] == ["handbook.md"]
    assert [d.name for d in await kb.list_documents()] == ["handbook.md"]
    assert await redis.hlen(f"{redis_prefix}kb:documents") == 1


async def test_indexing_timeout_leaves_the_document_listed_until_ready(
    kb: KnowledgeBase, yandex: FakeYandex
) -> None:
    yandex.indexing_seconds = 30
    stages = Stages()

    with pytest.raises(IndexingFailed, match="still being indexed"):
        await add(kb, "slow.md", HANDBOOK, progress=stages, timeout=0.3)

    assert stages.seen[-1] is DocumentStage.FAILED
    [document] = await kb.list_documents()
    assert (document.name, document.status) == ("slow.md", "in_progress")
    store_id = await kb.store_id()
    assert store_id is not None
    yandex.vector_stores[store_id].files[document.file_id].ready_at = 0  # indexing finishes
    [document] = await kb.list_documents()
    assert document.status == "completed"


async def test_a_broken_progress_display_does_not_stop_the_upload(kb: KnowledgeBase) -> None:
    async def broken(stage: DocumentStage) -> None:
        raise RuntimeError("telegram is down")

    document = await add(kb, "handbook.md", HANDBOOK, progress=broken)
    assert document.status == "completed"


# --------------------------------------------------------------------- listing, removing, searching


async def test_list_remove_and_search(kb: KnowledgeBase, yandex: FakeYandex) -> None:
    assert await kb.list_documents() == []
    assert await kb.search("vacation") == []  # no store yet
    handbook = await add(kb, "handbook.md", HANDBOOK)
    prices = await add(kb, "prices.txt", PRICES)

    documents = await kb.list_documents()
    assert [(d.name, d.size, d.status) for d in documents] == [
        ("handbook.md", len(HANDBOOK), "completed"),
        ("prices.txt", len(PRICES), "completed"),
    ]
    assert documents[0].added_at <= documents[1].added_at

    passages = await kb.search("how many vacation days do employees get?", max_results=2)
    assert passages[0].filename == "handbook.md" and passages[0].file_id == handbook.file_id
    assert "28 days of paid vacation" in passages[0].text
    assert 0 < passages[0].score <= 1 and len(passages) <= 2

    removed = await kb.remove_document("handbook.md")
    assert removed.file_id == handbook.file_id
    assert handbook.file_id not in yandex.files
    assert [d.name for d in await kb.list_documents()] == ["prices.txt"]
    assert all(p.filename != "handbook.md" for p in await kb.search("vacation days"))

    await kb.remove_document(prices.file_id)  # by id
    assert await kb.list_documents() == []
    with pytest.raises(DocumentNotFound, match=r"handbook\.md"):
        await kb.remove_document("handbook.md")


async def test_same_name_twice_must_be_removed_by_id(kb: KnowledgeBase) -> None:
    first = await add(kb, "notes.md", b"first version")
    await add(kb, "notes.md", b"second version")
    with pytest.raises(KnowledgeError, match="by id"):
        await kb.remove_document("notes.md")
    await kb.remove_document(first.file_id)
    assert [d.size for d in await kb.list_documents()] == [len(b"second version")]


async def test_files_added_by_other_means_are_listed_and_stale_records_dropped(
    kb: KnowledgeBase, client: openai.AsyncOpenAI, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    await add(kb, "handbook.md", HANDBOOK)
    gone = await add(kb, "prices.txt", PRICES)
    store_id = await kb.store_id()
    assert store_id is not None
    outside = await client.files.create(file=("faq.html", b"<p>FAQ</p>"), purpose="assistants")
    await client.vector_stores.files.create(store_id, file_id=outside.id)
    await client.vector_stores.files.delete(gone.file_id, vector_store_id=store_id)

    documents = {d.name: d for d in await kb.list_documents()}

    assert set(documents) == {"handbook.md", "faq.html"}
    assert documents["faq.html"].size == len(b"<p>FAQ</p>")
    assert set(await redis.hkeys(f"{redis_prefix}kb:documents")) == {
        documents["handbook.md"].file_id,
        outside.id,
    }


async def test_yandex_errors_become_plain_knowledge_errors(
    yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    wrong_key = "wrong-secret-key-123"
    client = openai.AsyncOpenAI(
        base_url=yandex.base_url, api_key=wrong_key, project=yandex.folder_id, max_retries=0
    )
    kb = KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix))
    with pytest.raises(KnowledgeError, match="credentials") as raised:
        await add(kb, "handbook.md", HANDBOOK)
    assert wrong_key not in str(raised.value)
    await client.close()

    kb = KnowledgeBase(
        openai.AsyncOpenAI(
            base_url="http://127.0.0.1:9/v1", api_key="k", project="f", max_retries=0, timeout=2
        ),
        redis,
        keys=RedisKeys(redis_prefix),
        configured_store_id="vs_missing",
    )
    with pytest.raises(KnowledgeError, match="unreachable"):
        await kb.search("anything")


async def test_a_vanished_configured_store_is_reported(
    client: openai.AsyncOpenAI, redis: Redis, redis_prefix: str
) -> None:
    kb = KnowledgeBase(client, redis, keys=RedisKeys(redis_prefix), configured_store_id="vs_gone")
    with pytest.raises(KnowledgeError, match="404"):
        await kb.list_documents()
    with pytest.raises(KnowledgeError, match="404"):
        await add(kb, "handbook.md", HANDBOOK)


# --------------------------------------------------------------------- tools for a Responses request


def settings(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "_env_file": None,
        "bot_token": "1:x",
        "yandex_api_key": "key",
        "yandex_folder_id": "folder",
        "web_search": False,
    }
    return load_settings(**{**values, **overrides})


def test_retrieval_tools(kb: KnowledgeBase) -> None:
    assert retrieval_tools(settings(), None) == []
    assert retrieval_tools(settings(file_search_max_results=7), "vs_1") == [
        {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 7}
    ]
    assert file_search_tool("vs_1", 3) == {
        "type": "file_search",
        "vector_store_ids": ["vs_1"],
        "max_num_results": 3,
    }
    assert retrieval_tools(settings(web_search=True), None) == [{"type": "web_search"}]
    tools = retrieval_tools(
        settings(web_search=True, web_search_domains="yandex.ru, wikipedia.org", web_search_region="213"),
        "vs_1",
    )
    assert [tool["type"] for tool in tools] == ["file_search", "web_search"]
    assert tools[1] == {
        "type": "web_search",
        "filters": {"allowed_domains": ["yandex.ru", "wikipedia.org"], "user_location": {"region": "213"}},
    }


async def test_tools_are_accepted_by_the_fake_responses_api(
    kb: KnowledgeBase, client: openai.AsyncOpenAI, yandex: FakeYandex
) -> None:
    document = await add(kb, "handbook.md", HANDBOOK)
    store_id = await kb.store_id()
    yandex.responder = yandex.cite_best_match("You get 28 days.")

    response = await client.responses.create(
        model=f"gpt://{yandex.folder_id}/yandexgpt-5.1",
        input=[{"role": "user", "content": "How many vacation days?"}],
        tools=retrieval_tools(settings(web_search=True, web_search_region="213"), store_id),  # type: ignore[arg-type]
        store=False,
    )

    assert response.output_text == "You get 28 days."
    [message] = [item for item in response.output if item.type == "message"]
    [annotation] = message.content[0].annotations  # type: ignore[union-attr]
    assert annotation.type == "file_citation"
    assert (annotation.file_id, annotation.filename) == (document.file_id, "handbook.md")
    assert yandex.requests[-1].body["tools"][0]["vector_store_ids"] == [store_id]


# --------------------------------------------------------------------- the fake's own edges


async def test_fake_limits_pagination_and_unknown_ids(client: openai.AsyncOpenAI, yandex: FakeYandex) -> None:
    yandex.max_file_bytes = 1000
    with pytest.raises(openai.APIStatusError) as raised:
        await client.files.create(file=("big.txt", b"x" * 1001), purpose="assistants")
    assert raised.value.status_code == 413 and "1000 bytes" in raised.value.message

    ids = [(await client.files.create(file=(f"{i}.txt", b"t"), purpose="assistants")).id for i in range(3)]
    store = await client.vector_stores.create(name="s", file_ids=ids)
    page = await client.vector_stores.files.list(store.id, limit=2, order="asc")
    assert [f.id for f in page.data] == ids[:2] and page.has_more
    assert [f.id async for f in client.vector_stores.files.list(store.id, limit=2, order="asc")] == ids
    assert [f.id async for f in client.files.list()] == ids[::-1]  # newest first by default

    for call in (
        client.files.retrieve("file-nope"),
        client.files.delete("file-nope"),
        client.vector_stores.retrieve("vs_nope"),
        client.vector_stores.files.create("vs_nope", file_id=ids[0]),
        client.vector_stores.files.create(store.id, file_id="file-nope"),
        client.vector_stores.files.retrieve("file-nope", vector_store_id=store.id),
    ):
        with pytest.raises(openai.NotFoundError):
            await call


async def test_fake_store_status_follows_indexing(client: openai.AsyncOpenAI, yandex: FakeYandex) -> None:
    yandex.fail_indexing(lambda name: name.startswith("bad"))
    good = await client.files.create(file=("good.md", b"text"), purpose="assistants")
    bad = await client.files.create(file=("bad.md", b"text"), purpose="assistants")
    store = await client.vector_stores.create(name="s", file_ids=[good.id, bad.id])
    assert store.status == "in_progress" and store.file_counts.in_progress == 2

    await asyncio.sleep(yandex.indexing_seconds + 0.05)

    store = await client.vector_stores.retrieve(store.id)
    assert store.status == "completed"
    assert (store.file_counts.completed, store.file_counts.failed, store.file_counts.total) == (1, 1, 2)
    failed = await client.vector_stores.files.retrieve(bad.id, vector_store_id=store.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "server_error"
