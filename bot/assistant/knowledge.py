"""The knowledge base the admin fills: documents in one Yandex vector store, catalogued in Redis.

Yandex keeps the files and their index; Redis keeps what Yandex may not tell us back (the file name,
size and when it was added, since vector store file listings carry no names) and, when no store is
configured, the id of the store the bot created for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any, ParamSpec, TypeVar

import openai
from openai import AsyncOpenAI
from openai.types.vector_stores import VectorStoreFile
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.assistant.client import FailureObserver
from bot.config import Settings
from bot.keys import RedisKeys
from bot.metrics import Metrics
from bot.storage import text

log = logging.getLogger(__name__)

# File types Yandex indexes (AI Studio docs); pptx is not among them.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "csv",
        "txt",
        "md",
        "html",
        "htm",
        "rtf",
        "json",
        "xml",
        "tex",
        "latex",
    }
)
MAX_FILE_BYTES = 128 * 1024 * 1024  # Yandex's limit per file
# An idle store expires this long after its last use; a year keeps a rarely asked bot's documents alive.
STORE_EXPIRY_DAYS = 365
STORE_NAME = "telegram-bot-knowledge-base"
# The first status checks come quickly (small files index in about a second), later ones every
# `poll_interval`, so a long indexing does not cost a request per fraction of a second.
FIRST_POLL_SECONDS = 0.2


class DocumentStage(StrEnum):
    """Where an upload is; reported to the `progress` callback of `KnowledgeBase.add_document`."""

    UPLOADING = "uploading"
    INDEXING = "indexing"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Document:
    """A document of the knowledge base. `status` is Yandex's: in_progress, completed, failed, cancelled."""

    file_id: str
    name: str
    size: int
    status: str
    added_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Passage:
    """One search hit: a piece of a document and how well it matches."""

    file_id: str
    filename: str
    score: float
    text: str


class KnowledgeError(Exception):
    """A knowledge base operation failed; the message is plain and fit to show to the admin."""


class UnsupportedFileType(KnowledgeError):
    """The file's type is not one Yandex can index."""


class FileTooLarge(KnowledgeError):
    """The file is over Yandex's per-file limit."""


class EmptyDocument(KnowledgeError):
    """The file has no content."""


class IndexingFailed(KnowledgeError):
    """Yandex could not index the file (or did not finish in time)."""


class DocumentNotFound(KnowledgeError):
    """No document has the given name or id."""


ProgressCallback = Callable[[DocumentStage], Awaitable[None]]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _storage_errors(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Report a Redis failure as a KnowledgeError, like a Yandex one, so callers handle one kind."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except RedisError as error:
            raise KnowledgeError(f"the bot's storage (Redis) failed: {type(error).__name__}") from None

    return wrapper


def is_supported(name: str) -> bool:
    """Whether a file of this name is of a type Yandex indexes (by extension)."""
    return PurePath(name).suffix.lower().lstrip(".") in SUPPORTED_EXTENSIONS


def check_document(name: str, size: int) -> None:
    """Refuse what Yandex would refuse, before anything is uploaded."""
    if not is_supported(name):
        kinds = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UnsupportedFileType(f"{name}: this file type cannot be indexed (supported: {kinds})")
    if size > MAX_FILE_BYTES:
        raise FileTooLarge(
            f"{name}: the file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB per file"
        )
    if size == 0:
        raise EmptyDocument(f"{name}: the file is empty")


def file_search_tool(store_id: str, max_num_results: int) -> dict[str, Any]:
    """The Responses API `file_search` tool over one vector store (Yandex allows one per request)."""
    return {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": max_num_results}


def web_search_tool(domains: tuple[str, ...] = (), region: str | None = None) -> dict[str, Any]:
    """The Responses API `web_search` tool in Yandex's shape (filters hold the domains and the region)."""
    filters: dict[str, Any] = {}
    if domains:
        filters["allowed_domains"] = list(domains)
    if region:
        filters["user_location"] = {"region": region}
    return {"type": "web_search", "filters": filters} if filters else {"type": "web_search"}


def retrieval_tools(settings: Settings, store_id: str | None) -> list[dict[str, Any]]:
    """The `tools` of a Responses request: file search over the knowledge base, web search if enabled."""
    tools: list[dict[str, Any]] = []
    if store_id:
        tools.append(file_search_tool(store_id, settings.file_search_max_results))
    if settings.web_search:
        tools.append(web_search_tool(settings.web_search_domains, settings.web_search_region))
    return tools


class KnowledgeBase:
    """The bot's documents in one Yandex vector store: add, list, remove, search.

    The store is `configured_store_id` when given; otherwise the first upload creates one and keeps its id
    in Redis, where every bot process finds it. Every failure is raised as a `KnowledgeError`.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        redis: Redis,
        *,
        keys: RedisKeys,
        configured_store_id: str | None = None,
        store_name: str = STORE_NAME,
        diagnosis: FailureObserver | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._client = client
        self._diagnosis = diagnosis
        self._redis = redis
        self._store_key = keys.kb_vector_store_id
        self._documents_key = keys.kb_documents
        self._configured_store_id = configured_store_id or None
        self._store_name = store_name
        # Two uploads at once in one process must not both create a store.
        self._create_lock = asyncio.Lock()

    # ----------------------------------------------------------------- the store

    @_storage_errors
    async def store_id(self) -> str | None:
        """The vector store's id: configured, or created earlier and kept in Redis; None before any upload."""
        if self._configured_store_id:
            return self._configured_store_id
        return text(await self._redis.get(self._store_key))

    async def tools(self, settings: Settings) -> list[dict[str, Any]]:
        """The retrieval tools for the next request: this knowledge base (once it has a store), web search.

        A knowledge base that cannot be reached right now leaves the answer without it, not without an
        answer.
        """
        try:
            store_id = await self.store_id()
        except KnowledgeError:
            log.warning("knowledge base unavailable; answering without it", exc_info=True)
            store_id = None
        return retrieval_tools(settings, store_id)

    # ----------------------------------------------------------------- adding

    @_storage_errors
    async def add_document(
        self,
        name: str,
        content: bytes,
        *,
        progress: ProgressCallback | None = None,
        poll_interval: float = 1.0,
        timeout: float = 600,  # noqa: ASYNC109 - the deadline covers only the indexing wait
    ) -> Document:
        """Upload a document and wait until it is indexed; raise a `KnowledgeError` when that fails.

        `name` becomes the file name Yandex keeps, so answers cite the document as the admin knows it.
        """
        name = PurePath(name).name  # a local folder path is nobody's business on Yandex
        try:
            check_document(name, len(content))
        except KnowledgeError:
            self._metrics.kb_upload("rejected")
            raise
        try:
            document = await self._add(name, content, progress, poll_interval, indexing_timeout=timeout)
        except BaseException:
            self._metrics.kb_upload("failed")
            await _report(progress, DocumentStage.FAILED)
            raise
        self._metrics.kb_upload("ready")
        return document

    async def _add(
        self,
        name: str,
        content: bytes,
        progress: ProgressCallback | None,
        poll_interval: float,
        *,
        indexing_timeout: float,
    ) -> Document:
        await _report(progress, DocumentStage.UPLOADING)
        async with self._api("upload the file"):
            uploaded = await self._client.files.create(file=(name, content), purpose="assistants")
        try:
            store_id = await self._attach(uploaded.id)
        except BaseException:
            await self._forget_file(None, uploaded.id)
            raise
        document = Document(uploaded.id, name, len(content), "in_progress", datetime.now(UTC))
        await self._save(document)
        await _report(progress, DocumentStage.INDEXING)
        try:
            async with asyncio.timeout(indexing_timeout):
                status, error = await self._wait_indexed(store_id, uploaded.id, poll_interval)
        except TimeoutError:
            raise IndexingFailed(
                f"{name}: still being indexed after {indexing_timeout:g} s; it stays in the knowledge base "
                "and the list shows when it is ready"
            ) from None
        if status != "completed":
            # A failed file is never searched; keeping it would only clutter the list and the storage.
            await self._forget_file(store_id, uploaded.id)
            await self._redis.hdel(self._documents_key, uploaded.id)
            raise IndexingFailed(f"{name}: Yandex could not index the file: {error or status}")
        document = replace(document, status="completed")
        await self._save(document)
        await _report(progress, DocumentStage.READY)
        return document

    async def _attach(self, file_id: str) -> str:
        """Attach an uploaded file to the store, creating the store on the first upload; its id."""
        store_id = await self.store_id()
        if store_id is None:
            async with self._create_lock:
                store_id = await self.store_id()
                if store_id is None:
                    return await self._create_store(file_id)
        async with self._api("add the file to the knowledge base"):
            await self._client.vector_stores.files.create(store_id, file_id=file_id)
        return store_id

    async def _create_store(self, file_id: str) -> str:
        async with self._api("create the knowledge base"):
            store = await self._client.vector_stores.create(
                name=self._store_name,
                file_ids=[file_id],
                expires_after={"anchor": "last_active_at", "days": STORE_EXPIRY_DAYS},
            )
        if await self._redis.set(self._store_key, store.id, nx=True):
            log.info("created vector store %s for the knowledge base", store.id)
            return store.id
        # Another process created one meanwhile: use theirs, drop ours (with our file's attachment).
        with contextlib.suppress(openai.OpenAIError):
            await self._client.vector_stores.delete(store.id)
        winner = text(await self._redis.get(self._store_key))
        if winner is None:  # deleted between our SET and GET; unlikely enough to just report
            raise KnowledgeError("the knowledge base was reset while adding a file; try again")
        async with self._api("add the file to the knowledge base"):
            await self._client.vector_stores.files.create(winner, file_id=file_id)
        return winner

    async def _wait_indexed(
        self, store_id: str, file_id: str, poll_interval: float
    ) -> tuple[str, str | None]:
        """Poll the file's indexing status until it is final: (status, error message)."""
        delay = min(FIRST_POLL_SECONDS, poll_interval)
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, poll_interval)
            async with self._api("check the indexing"):
                entry = await self._client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
            if entry.status != "in_progress":
                return entry.status, entry.last_error.message if entry.last_error else None

    # ----------------------------------------------------------------- listing and removing

    @_storage_errors
    async def list_documents(self) -> list[Document]:
        """Every document in the store, oldest first, with the names and sizes recorded at upload.

        Files Redis does not know (added by other means) are listed with the name Yandex keeps for them;
        records of files no longer in the store are dropped.
        """
        # Read the records before listing the store: a record is written only after its file was
        # attached, so a record missing from this listing really is gone.
        records = await self._redis.hgetall(self._documents_key)
        store_id = await self.store_id()
        if store_id is None:
            return []
        documents: list[Document] = []
        seen: set[str] = set()
        async with self._api("list the knowledge base"):
            async for entry in self._client.vector_stores.files.list(store_id, order="asc", limit=100):
                seen.add(entry.id)
                documents.append(await self._document_for(entry, text(records.get(entry.id))))
        gone = [file_id for file_id in records if file_id not in seen]
        if gone:
            await self._redis.hdel(self._documents_key, *gone)
        return sorted(documents, key=lambda document: document.added_at)

    @_storage_errors
    async def recorded_size(self) -> tuple[int, int]:
        """How many documents the catalogue in Redis lists, and their total bytes: no call to Yandex
        (the catalogue is brought up to date by every listing)."""
        records = await self._redis.hgetall(self._documents_key)
        sizes = [_parse_record(str(file_id), text(raw) or "{}").size for file_id, raw in records.items()]
        return len(sizes), sum(sizes)

    async def _document_for(self, entry: VectorStoreFile, record: str | None) -> Document:
        error = entry.last_error.message if entry.last_error else None
        if record is not None:
            known = _parse_record(entry.id, record)
            document = replace(known, status=entry.status, error=error)
            if known.status == document.status:
                return document
        else:
            async with self._api("read a file's details"):
                file = await self._client.files.retrieve(entry.id)
            added_at = datetime.fromtimestamp(entry.created_at, UTC)
            document = Document(entry.id, file.filename, file.bytes, entry.status, added_at, error)
        await self._save(document)
        return document

    @_storage_errors
    async def remove_document(self, name_or_id: str) -> Document:
        """Take a document out of the store and delete the file; by file id or by exact name."""
        documents = await self.list_documents()
        matches = [d for d in documents if d.file_id == name_or_id] or [
            d for d in documents if d.name == name_or_id
        ]
        if not matches:
            raise DocumentNotFound(f"no document is named {name_or_id!r} (see the list for names and ids)")
        if len(matches) > 1:
            ids = ", ".join(d.file_id for d in matches)
            raise KnowledgeError(f"several documents are named {name_or_id!r}; remove one by id: {ids}")
        document = matches[0]
        store_id = await self.store_id()
        assert store_id is not None  # documents were listed from it
        async with self._api("remove the file from the knowledge base"):
            with contextlib.suppress(openai.NotFoundError):
                await self._client.vector_stores.files.delete(document.file_id, vector_store_id=store_id)
            with contextlib.suppress(openai.NotFoundError):
                await self._client.files.delete(document.file_id)
        await self._redis.hdel(self._documents_key, document.file_id)
        return document

    # ----------------------------------------------------------------- searching

    @_storage_errors
    async def search(self, query: str, *, max_results: int = 5) -> list[Passage]:
        """The passages that match `query` best, as the model's file search would see them."""
        store_id = await self.store_id()
        if store_id is None or not query.strip():
            return []
        async with self._api("search the knowledge base"):
            page = await self._client.vector_stores.search(store_id, query=query, max_num_results=max_results)
        return [
            Passage(
                file_id=hit.file_id,
                filename=hit.filename,
                score=hit.score,
                text="\n".join(part.text for part in hit.content),
            )
            for hit in page.data
        ]

    # ----------------------------------------------------------------- helpers

    async def _save(self, document: Document) -> None:
        record = {
            "name": document.name,
            "size": document.size,
            "status": document.status,
            "added_at": document.added_at.timestamp(),
        }
        await self._redis.hset(self._documents_key, document.file_id, json.dumps(record, ensure_ascii=False))

    async def _forget_file(self, store_id: str | None, file_id: str) -> None:
        """Best-effort clean-up of a file that will not become a document."""
        try:
            if store_id is not None:
                with contextlib.suppress(openai.NotFoundError):
                    await self._client.vector_stores.files.delete(file_id, vector_store_id=store_id)
            await self._client.files.delete(file_id)
        except openai.OpenAIError as error:
            log.warning("could not delete file %s after a failed upload: %s", file_id, type(error).__name__)

    @contextlib.asynccontextmanager
    async def _api(self, action: str) -> AsyncIterator[None]:
        """Turn the client's errors into a KnowledgeError that says what could not be done."""
        try:
            yield
        except openai.APITimeoutError:
            raise KnowledgeError(f"could not {action}: Yandex did not answer in time") from None
        except openai.APIConnectionError:
            raise KnowledgeError(f"could not {action}: Yandex is unreachable") from None
        except openai.APIStatusError as error:
            if self._diagnosis is not None:
                self._diagnosis.observe(error)  # a refused credential is explained once in the log
            raise KnowledgeError(f"could not {action}: {_describe(error)}") from None
        except openai.OpenAIError as error:
            raise KnowledgeError(f"could not {action}: {type(error).__name__}") from None


def _describe(error: openai.APIStatusError) -> str:
    # The body's own message is the readable part; the exception text repeats it after "Error code: N -".
    message = None
    if isinstance(error.body, dict):
        message = error.body.get("message")
        nested = error.body.get("error")
        if message is None and isinstance(nested, dict):
            message = nested.get("message")
    if error.status_code in (401, 403):
        return (
            "Yandex refused the credentials or the folder (the log says which credential, and what it needs)"
        )
    return f"Yandex answered {error.status_code}: {message or 'no details'}"


def _parse_record(file_id: str, raw: str) -> Document:
    data = json.loads(raw)
    return Document(
        file_id=file_id,
        name=str(data.get("name") or file_id),
        size=int(data.get("size") or 0),
        status=str(data.get("status") or "in_progress"),
        added_at=datetime.fromtimestamp(float(data.get("added_at") or 0), UTC),
    )


async def _report(progress: ProgressCallback | None, stage: DocumentStage) -> None:
    if progress is None:
        return
    try:
        await progress(stage)
    except Exception:  # a broken progress display must not abort an upload that is going well
        log.warning("progress callback failed at stage %s", stage.value, exc_info=True)
