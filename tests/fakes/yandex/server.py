"""The fake's HTTP server: routes, authentication, the Responses endpoint, Files and Vector Stores."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.yandex.files import (
    INDEXABLE_EXTENSIONS,
    MAX_FILE_BYTES,
    FakeFile,
    FakeStoreFile,
    FakeVectorStore,
    _extension,
    _IndexingFailure,
    _words,
)
from tests.fakes.yandex.http import _HTTP_ERROR_TYPES, _ApiError, _ClientGone, _new_id, _page, _read_json
from tests.fakes.yandex.quota import GenerationQuotaFake
from tests.fakes.yandex.responses import (
    UNSUPPORTED_PARAMS,
    RecordedRequest,
    Reply,
    _normalise_input,
    _ResponseBuilder,
    split_chunks,
)
from tests.fakes.yandex.tokens import TokenRegistry

# The text generation models Yandex lists (April 2026), plus the older names still served by branch.
MODELS = (
    "aliceai-llm",
    "yandexgpt",
    "yandexgpt-lite",
    "yandexgpt-5.1",
    "yandexgpt-5-pro",
    "yandexgpt-5-lite",
    "deepseek-v32",
    "qwen3-235b-a22b-fp8",
    "gpt-oss-120b",
    "gemma-3-27b-it",
)
VISION_MODELS = ("gemma-3-27b-it",)
IMAGE_DATA_URL = re.compile(r"data:image/(jpeg|png|webp|gif);base64,([A-Za-z0-9+/]+={0,2})")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Names a deployment may still have configured after Yandex retired them (examples; the real list moves).
RETIRED_MODELS = ("yandexgpt-4", "yandexgpt-4-lite", "llama")


class FakeYandex:
    """aiohttp fake of ``POST /v1/responses`` on Yandex AI Studio, for the real openai client.

    Replies come from :meth:`script` (a FIFO queue), then from :attr:`responder`, then a fixed
    ``"Hello!"``. Every ``POST /v1/responses`` is recorded in :attr:`requests`, including rejected ones.
    """

    def __init__(self, *, api_key: str = "test-api-key", folder_id: str = "b1gtestfolder") -> None:
        self.api_key = api_key
        self.folder_id = folder_id
        self.base_url = ""
        self.responder: Callable[[dict[str, Any]], Reply | str] | None = None
        self.requests: list[RecordedRequest] = []
        self.silent_streams_closed = 0  # "silent" streams the client gave up on and closed
        self.open_streams = 0
        self.closed_by_client = 0
        # usage.total_tokens of every streamed response that ended with one (completed or incomplete).
        self.reported_tokens: list[int] = []
        # Optional measurement hook: called as on_delta(request_body, delta_text, time.monotonic()) right
        # after each response.output_text.delta event has been written to the stream (benchmarks use it).
        self.on_delta: Callable[[dict[str, Any], str, float], None] | None = None
        self._queue: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = False
        # Every request as (method, path), so a test can assert that something made no HTTP call at all.
        self.calls: list[tuple[str, str]] = []
        self.files: dict[str, FakeFile] = {}
        self.vector_stores: dict[str, FakeVectorStore] = {}
        self.indexing_seconds = 0.2
        self.max_file_bytes = MAX_FILE_BYTES
        self._indexing_failures: list[_IndexingFailure] = []
        # None: one fixed key, no quota (see tokens.py and quota.py of this package).
        self.tokens: TokenRegistry | None = None
        self.quota: GenerationQuotaFake | None = None
        # Model names served (gpt://<folder>/<name>[/<branch>]); retired ones get 400 like unknown ones.
        self.models: set[str] = set(MODELS)
        self.retired_models: set[str] = set(RETIRED_MODELS)
        # Models that take pictures (input_image parts); the others refuse a request with one.
        self.vision_models: set[str] = set(VISION_MODELS)

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns (and sets) :attr:`base_url`."""
        app = web.Application(middlewares=[self._middleware])
        for method, path, handler in self._routes():
            app.router.add_route(method, path, handler)
        # handler_cancellation makes aiohttp cancel the handler as soon as the client disconnects,
        # so an abandoned stream stops producing (paid) tokens immediately rather than at the next write.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop the server, dropping any streams still running."""
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeYandex:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- scripting / inspection

    def script(self, *replies: Reply | str) -> None:
        """Queue replies, served in order to the following requests."""
        self._queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def last_input(self) -> list[dict[str, Any]]:
        """The ``input`` of the last request as a list of ``{"role", "content"}``."""
        if not self.requests:
            raise AssertionError("FakeYandex received no requests")
        return _normalise_input(self.requests[-1].body.get("input"))

    # The `timeout` argument is part of the interface other tests already call; asyncio.timeout would
    # force every caller to wrap the call themselves.
    async def wait_until(
        self,
        predicate: Callable[[], bool | Awaitable[bool]],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Poll ``predicate`` until it is true; raise TimeoutError after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            reply = self.responder(body)
            return Reply(text=reply) if isinstance(reply, str) else reply
        return Reply()

    # ----------------------------------------------------------------- files + vector stores: scripting

    def fail_indexing(
        self,
        filename_or_predicate: str | Callable[[str], bool],
        *,
        code: str = "server_error",
        message: str | None = None,
    ) -> None:
        """Make indexing of matching files (by file name) end as ``failed`` with ``last_error``.

        ``code`` is ``server_error`` or ``invalid_file``; applies to files attached from now on.
        """
        if code not in ("server_error", "invalid_file", "unsupported_file"):
            raise ValueError(f"unknown indexing error code {code!r}")
        if isinstance(filename_or_predicate, str):
            wanted = filename_or_predicate

            def matches(filename: str) -> bool:
                return filename == wanted
        else:
            matches = filename_or_predicate
        default = "The file could not be parsed" if code == "invalid_file" else "Indexing failed"
        self._indexing_failures.append(_IndexingFailure(matches, code, message or default))

    def search_store(self, store_id: str, query: str, max_results: int = 10) -> list[dict[str, Any]]:
        """Keyword-overlap search over a store's indexed files: the ``data`` of a search results page."""
        store = self.vector_stores[store_id]
        wanted = _words(query)
        scored: list[tuple[float, int, dict[str, Any]]] = []
        if not wanted:
            return []
        for entry in store.files.values():
            entry.refresh()
            file = self.files.get(entry.file_id)
            if entry.status != "completed" or file is None:
                continue
            for passage in file.passages():
                overlap = len(wanted & _words(passage))
                if overlap:
                    result = {
                        "file_id": file.id,
                        "filename": file.filename,
                        "score": round(overlap / len(wanted), 4),
                        "attributes": {},
                        "content": [{"type": "text", "text": passage}],
                    }
                    scored.append((result["score"], -len(scored), result))
        scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [result for _, _, result in scored[:max_results]]

    def cite_best_match(self, reply_text: str) -> Callable[[dict[str, Any]], Reply]:
        """A :attr:`responder` that answers ``reply_text`` citing the best-matching uploaded file.

        It searches the request's ``file_search`` store with the last user message; with no store or no
        match the reply has no citation (as a model that found nothing would answer).
        """

        def respond(body: dict[str, Any]) -> Reply:
            store_id = next(
                (
                    tool["vector_store_ids"][0]
                    for tool in body.get("tools") or []
                    if isinstance(tool, dict) and tool.get("type") == "file_search"
                ),
                None,
            )
            users = [m for m in _normalise_input(body.get("input")) if m["role"] == "user"]
            if store_id not in self.vector_stores or not users:
                return Reply(text=reply_text)
            hits = self.search_store(store_id, str(users[-1]["content"]), max_results=1)
            if not hits:
                return Reply(text=reply_text, tool_calls=["file_search"])
            citation = {
                "type": "file_citation",
                "file_id": hits[0]["file_id"],
                "filename": hits[0]["filename"],
                "index": 0,
            }
            return Reply(text=reply_text, citations=[citation], tool_calls=["file_search"])

        return respond

    # ----------------------------------------------------------------- /v1/files

    async def _create_file(self, request: web.Request) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/"):
            raise _ApiError(400, "Expected a multipart/form-data body with 'file' and 'purpose'")
        reader = await request.multipart()
        purpose: str | None = None
        filename: str | None = None
        content = bytearray()
        too_large = False
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "purpose":
                purpose = (await part.text()).strip()
            elif part.name == "file":
                filename = part.filename or "file"
                # Read the whole body even when it is too big: answering before the client finished
                # sending would show it a broken pipe instead of our error.
                while chunk := await part.read_chunk(1 << 16):
                    if len(content) + len(chunk) > self.max_file_bytes:
                        too_large = True
                    if not too_large:
                        content.extend(chunk)
            else:
                await part.release()
        if filename is None:
            raise _ApiError(400, "Missing required parameter: 'file'", param="file")
        if too_large:
            raise _ApiError(
                413,
                f"File is too large: the limit is {self.max_file_bytes} bytes per file",
                type_="invalid_request_error",
                code="file_too_large",
                param="file",
            )
        if purpose not in ("assistants", "user_data"):
            raise _ApiError(400, f"Invalid purpose: {purpose!r}", param="purpose")
        file = FakeFile(
            id=f"file-{uuid.uuid4().hex[:24]}",
            filename=filename,
            purpose=purpose,
            content=bytes(content),
            created_at=int(time.time()),
        )
        self.files[file.id] = file
        return web.json_response(file.to_json())

    async def _list_files(self, request: web.Request) -> web.StreamResponse:
        purpose = request.query.get("purpose")
        items = [f.to_json() for f in self.files.values() if purpose in (None, f.purpose)]
        return web.json_response(_page(items, request, default_limit=10000, max_limit=10000))

    def _file(self, file_id: str) -> FakeFile:
        try:
            return self.files[file_id]
        except KeyError:
            raise _ApiError(404, f"No such File object: {file_id}", param="id") from None

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._file(request.match_info["file_id"]).to_json())

    async def _delete_file(self, request: web.Request) -> web.StreamResponse:
        file = self._file(request.match_info["file_id"])
        del self.files[file.id]
        # A deleted file disappears from every store it was attached to.
        for store in self.vector_stores.values():
            store.files.pop(file.id, None)
        return web.json_response({"id": file.id, "object": "file", "deleted": True})

    # ----------------------------------------------------------------- /v1/vector_stores

    def _store(self, store_id: str) -> FakeVectorStore:
        try:
            return self.vector_stores[store_id]
        except KeyError:
            raise _ApiError(404, f"No such vector store: {store_id}", param="vector_store_id") from None

    def _attach(self, store: FakeVectorStore, file_id: str) -> FakeStoreFile:
        if file_id in store.files:
            return store.files[file_id]
        file = self._file(file_id)
        error: dict[str, str] | None = None
        if _extension(file.filename) not in INDEXABLE_EXTENSIONS:
            error = {"code": "unsupported_file", "message": f"Unsupported file type: {file.filename}"}
        for failure in self._indexing_failures:
            if failure.matches(file.filename):
                error = {"code": failure.code, "message": failure.message}
        entry = FakeStoreFile(
            file_id=file.id,
            created_at=int(time.time()),
            ready_at=time.monotonic() + self.indexing_seconds,
            usage_bytes=len(file.content),
            outcome_error=error,
        )
        store.files[file.id] = entry
        return entry

    async def _create_store(self, request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        file_ids = body.get("file_ids") or []
        if not isinstance(file_ids, list) or not all(isinstance(i, str) for i in file_ids):
            raise _ApiError(400, "file_ids must be a list of file ids", param="file_ids")
        expires_after = body.get("expires_after")
        if expires_after is not None:
            days = expires_after.get("days") if isinstance(expires_after, dict) else None
            if (
                not isinstance(expires_after, dict)
                or expires_after.get("anchor") != "last_active_at"
                or not isinstance(days, int)
                or not 1 <= days <= 365
            ):
                raise _ApiError(
                    400, "expires_after must be {anchor: last_active_at, days: 1..365}", param="expires_after"
                )
        for file_id in file_ids:
            self._file(file_id)  # all-or-nothing: check every id before creating anything
        store = FakeVectorStore(
            id=f"vs_{uuid.uuid4().hex[:24]}",
            name=str(body.get("name") or ""),
            created_at=int(time.time()),
            expires_after=expires_after,
        )
        self.vector_stores[store.id] = store
        for file_id in file_ids:
            self._attach(store, file_id)
        return web.json_response(store.to_json())

    async def _list_stores(self, request: web.Request) -> web.StreamResponse:
        items = [store.to_json() for store in self.vector_stores.values()]
        return web.json_response(_page(items, request, default_limit=20, max_limit=100))

    async def _get_store(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._store(request.match_info["store_id"]).to_json())

    async def _delete_store(self, request: web.Request) -> web.StreamResponse:
        store = self._store(request.match_info["store_id"])
        del self.vector_stores[store.id]
        return web.json_response({"id": store.id, "object": "vector_store.deleted", "deleted": True})

    async def _attach_file(self, request: web.Request) -> web.StreamResponse:
        store = self._store(request.match_info["store_id"])
        body = await _read_json(request)
        file_id = body.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise _ApiError(400, "Missing required parameter: 'file_id'", param="file_id")
        return web.json_response(self._attach(store, file_id).to_json(store.id))

    async def _list_store_files(self, request: web.Request) -> web.StreamResponse:
        store = self._store(request.match_info["store_id"])
        wanted = request.query.get("filter")
        items = [entry.to_json(store.id) for entry in store.files.values()]
        items = [item for item in items if wanted in (None, item["status"])]
        return web.json_response(_page(items, request, default_limit=20, max_limit=100))

    def _store_file(self, request: web.Request) -> tuple[FakeVectorStore, FakeStoreFile]:
        store = self._store(request.match_info["store_id"])
        file_id = request.match_info["file_id"]
        if file_id not in store.files:
            raise _ApiError(404, f"No such file in vector store {store.id}: {file_id}", param="file_id")
        return store, store.files[file_id]

    async def _get_store_file(self, request: web.Request) -> web.StreamResponse:
        store, entry = self._store_file(request)
        return web.json_response(entry.to_json(store.id))

    async def _detach_file(self, request: web.Request) -> web.StreamResponse:
        store, entry = self._store_file(request)
        del store.files[entry.file_id]
        deleted = {"id": entry.file_id, "object": "vector_store.file.deleted", "deleted": True}
        return web.json_response(deleted)

    async def _search(self, request: web.Request) -> web.StreamResponse:
        store = self._store(request.match_info["store_id"])
        body = await _read_json(request)
        query = body.get("query")
        if isinstance(query, list) and all(isinstance(q, str) for q in query):
            query = " ".join(query)
        if not isinstance(query, str) or not query.strip():
            raise _ApiError(400, "query must be a non-empty string", param="query")
        max_results = body.get("max_num_results", 10)
        if not isinstance(max_results, int) or not 1 <= max_results <= 50:
            raise _ApiError(400, "max_num_results must be between 1 and 50", param="max_num_results")
        return web.json_response(
            {
                "object": "vector_store.search_results.page",
                "search_query": body["query"],
                "data": self.search_store(store.id, query, max_results),
                "has_more": False,
                "next_page": None,
            }
        )

    # ----------------------------------------------------------------- routing / validation

    def _routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        # New endpoints (files, vector_stores, conversations) go here; auth is applied by the middleware.
        return [
            ("POST", "/v1/responses", self._handle_responses),
            ("POST", "/v1/files", self._create_file),
            ("GET", "/v1/files", self._list_files),
            ("GET", "/v1/files/{file_id}", self._get_file),
            ("DELETE", "/v1/files/{file_id}", self._delete_file),
            ("POST", "/v1/vector_stores", self._create_store),
            ("GET", "/v1/vector_stores", self._list_stores),
            ("GET", "/v1/vector_stores/{store_id}", self._get_store),
            ("DELETE", "/v1/vector_stores/{store_id}", self._delete_store),
            ("POST", "/v1/vector_stores/{store_id}/files", self._attach_file),
            ("GET", "/v1/vector_stores/{store_id}/files", self._list_store_files),
            ("GET", "/v1/vector_stores/{store_id}/files/{file_id}", self._get_store_file),
            ("DELETE", "/v1/vector_stores/{store_id}/files/{file_id}", self._detach_file),
            ("POST", "/v1/vector_stores/{store_id}/search", self._search),
        ]

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.calls.append((request.method, request.path))
        if request.method == "POST" and request.path == "/v1/responses":
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                body = None
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(
                RecordedRequest(
                    body=body if isinstance(body, dict) else {}, headers=headers, at=time.monotonic()
                )
            )
        try:
            self._check_auth(request)
            return await handler(request)
        except _ApiError as err:
            return err.to_response()
        except web.HTTPNotFound:
            return _ApiError(404, f"Unknown path {request.path}").to_response()
        except web.HTTPMethodNotAllowed:
            return _ApiError(
                405, f"Method {request.method} not allowed", type_="invalid_request_error"
            ).to_response()

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if self.tokens is not None:
            refusal = self.tokens.check(auth)
            if refusal is not None:
                raise _ApiError(refusal.status, refusal.message)
        elif auth not in (f"Bearer {self.api_key}", f"Api-Key {self.api_key}"):
            raise _ApiError(401, "Unauthorized")
        if request.headers.get("OpenAI-Project") != self.folder_id:
            raise _ApiError(403, "Permission denied: the folder is missing or not accessible with this key")

    def _validate_responses_body(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, "Request body must be a JSON object")
        for name in UNSUPPORTED_PARAMS:
            # Even an explicit null is rejected: the consumer should omit these parameters.
            if name in body:
                raise _ApiError(
                    400,
                    f"Unsupported parameter: '{name}' is not supported",
                    param=name,
                    code="unsupported_parameter",
                )
        model = body.get("model")
        if (
            not isinstance(model, str)
            or not model.startswith(f"gpt://{self.folder_id}/")
            or len(model) <= len(f"gpt://{self.folder_id}/")
        ):
            raise _ApiError(400, f"Failed to parse model URI: {model!r}", param="model")
        # gpt://<folder>/<name>[/<branch>]: a retired or unknown name is refused with 400 too.
        name = model.removeprefix(f"gpt://{self.folder_id}/")
        if name in self.retired_models or name.split("/")[0] in self.retired_models:
            raise _ApiError(400, f"invalid model_uri: {model}: the model was retired", param="model")
        if name.split("/")[0] not in self.models:
            raise _ApiError(400, f"invalid model_uri: {model}: no such model", param="model")
        temperature = body.get("temperature")
        if temperature is not None and (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not 0 <= temperature <= 1
        ):
            raise _ApiError(400, "temperature must be between 0 and 1", param="temperature")
        max_tokens = body.get("max_output_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _ApiError(400, "max_output_tokens must be a positive integer", param="max_output_tokens")
        inp = body.get("input")
        if inp is not None and not isinstance(inp, str | list):
            raise _ApiError(400, "input must be a string or a list of items", param="input")
        if isinstance(inp, list):
            self._validate_parts(inp, name.split("/")[0])
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict) or tool.get("type") not in ("file_search", "web_search"):
                raise _ApiError(400, f"Unsupported tool: {tool!r}", param="tools")
            if tool["type"] == "file_search":
                ids = tool.get("vector_store_ids")
                if not isinstance(ids, list) or len(ids) != 1:
                    raise _ApiError(
                        400, "file_search supports exactly one vector store per request", param="tools"
                    )
        return body

    def _validate_parts(self, items: list[Any], model: str) -> None:
        """Content given as a list of parts: text parts, and pictures for a model that can see."""
        for item in items:
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list):
                continue
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in ("input_text", "output_text"):
                    if not isinstance(part.get("text"), str):
                        raise _ApiError(400, f"{kind} part without text", param="input")
                elif kind == "input_image":
                    if model not in self.vision_models:
                        raise _ApiError(400, f"model {model} does not support image input", param="input")
                    url = part.get("image_url")
                    match = IMAGE_DATA_URL.fullmatch(url) if isinstance(url, str) else None
                    if match is None:
                        # Pictures are sent inline; a remote URL (a Telegram file URL would carry the
                        # bot token) is not fetched.
                        raise _ApiError(400, "image_url must be a base64 data URL of an image", param="input")
                    try:
                        data = base64.b64decode(match.group(2), validate=True)
                    except ValueError as error:
                        raise _ApiError(400, "image_url is not valid base64", param="input") from error
                    if len(data) > MAX_IMAGE_BYTES:
                        raise _ApiError(400, "image is too large", param="input")
                else:
                    raise _ApiError(400, f"Unsupported content part type: {kind!r}", param="input")

    # ----------------------------------------------------------------- /v1/responses

    async def _handle_responses(self, request: web.Request) -> web.StreamResponse:
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError) as err:
            raise _ApiError(400, "Request body is not valid JSON") from err
        body = self._validate_responses_body(raw)
        if self.quota is not None and body.get("stream") is True:
            return await self.quota.serve(self.folder_id, lambda: self._respond(request, body))
        return await self._respond(request, body)

    async def _respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        reply = self._next_reply(body)
        if reply.http_status is not None:
            error_type, message = _HTTP_ERROR_TYPES.get(reply.http_status, ("error", "Error"))
            error = _ApiError(reply.http_status, reply.error_message or message, type_=error_type)
            if reply.retry_after is not None:
                error.headers["Retry-After"] = f"{reply.retry_after:g}"
            raise error
        if body.get("stream") is True:
            return await self._stream(request, body, reply)
        return await self._complete(request, body, reply)

    async def _complete(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        builder = _ResponseBuilder(body, reply)
        if reply.fail_after is None:
            return web.json_response(
                builder.response("completed", text=reply.text), headers={"x-request-id": _new_id("req")}
            )
        text = reply.text[: reply.fail_after]
        if reply.failure == "disconnect":
            if request.transport is not None:
                request.transport.close()
            # The socket is gone; aiohttp drops whatever we return, the client sees a connection error.
            return web.Response(status=204)
        if reply.failure.startswith("incomplete_"):
            reason = "max_output_tokens" if reply.failure == "incomplete_max_tokens" else "content_filter"
            return web.json_response(
                builder.response(
                    "incomplete", text=text, message_status="incomplete", incomplete_reason=reason
                )
            )
        raise _ApiError(500, reply.error_message or "Internal error", type_="server_error")

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": _new_id("req"),
            },
        )
        await resp.prepare(request)
        self.open_streams += 1
        gone = False
        try:
            await self._produce(request, resp, body, reply)
        except (_ClientGone, ConnectionResetError):
            gone = True
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the peer goes away; a cancel from stop() is not the client.
            gone = not self._stopping
            raise
        finally:
            self.open_streams -= 1
            if gone:
                self.closed_by_client += 1
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _produce(
        self, request: web.Request, resp: web.StreamResponse, body: dict[str, Any], reply: Reply
    ) -> None:
        b = _ResponseBuilder(body, reply)
        failing = reply.fail_after is not None
        text = reply.text[: reply.fail_after] if failing else reply.text
        chunks = split_chunks(text, reply.chunk_size)
        msg_loc = {"item_id": b.msg_id, "output_index": b.msg_index, "content_index": 0}

        async def send(type_: str, **payload: Any) -> None:
            if request.transport is None or request.transport.is_closing():
                raise _ClientGone
            data = {"type": type_, **payload, "sequence_number": b.seq()}
            frame = f"event: {type_}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            await resp.write(frame.encode("utf-8"))
            usage = (payload.get("response") or {}).get("usage")
            if type_ in ("response.completed", "response.incomplete") and usage:
                self.reported_tokens.append(usage["total_tokens"])

        async def pause(seconds: float) -> None:
            # Sleep in slices so a client that leaves during a long delay is noticed promptly even when
            # the handler is not cancelled (e.g. the transport closes without connection_lost yet).
            end = asyncio.get_running_loop().time() + seconds
            while (left := end - asyncio.get_running_loop().time()) > 0:
                await asyncio.sleep(min(left, 0.05))
                if request.transport is None or request.transport.is_closing():
                    raise _ClientGone

        full = not reply.minimal_events
        if full:
            await send("response.created", response=b.response("in_progress"))
            await send("response.in_progress", response=b.response("in_progress"))
            for index, item in enumerate(b.tool_items):
                await self._send_tool_call(send, index, item)
            await send(
                "response.output_item.added",
                output_index=b.msg_index,
                item=b.message_item("", "in_progress", with_content=False),
            )
            await send("response.content_part.added", **msg_loc, part=b.text_part("", with_annotations=False))

        await pause(reply.first_delay)
        for i, chunk in enumerate(chunks):
            if i:
                await pause(reply.delay)
            await send("response.output_text.delta", **msg_loc, delta=chunk, logprobs=[])
            if self.on_delta is not None:
                self.on_delta(body, chunk, time.monotonic())

        if failing:
            await self._fail(request, send, b, reply, text, msg_loc)
            return

        if full:
            for i, annotation in enumerate(reply.citations if reply.citations_streamed else []):
                await send(
                    "response.output_text.annotation.added",
                    **msg_loc,
                    annotation_index=i,
                    annotation=annotation,
                )
            await send("response.output_text.done", **msg_loc, text=text, logprobs=[])
            await send("response.content_part.done", **msg_loc, part=b.text_part(text, with_annotations=True))
            await send(
                "response.output_item.done", output_index=b.msg_index, item=b.message_item(text, "completed")
            )
        await send("response.completed", response=b.response("completed", text=text))

    async def _send_tool_call(
        self, send: Callable[..., Awaitable[None]], index: int, item: dict[str, Any]
    ) -> None:
        prefix = f"response.{item['type']}"
        await send("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        for phase in ("in_progress", "searching", "completed"):
            await send(f"{prefix}.{phase}", item_id=item["id"], output_index=index)
        await send("response.output_item.done", output_index=index, item=item)

    async def _fail(
        self,
        request: web.Request,
        send: Callable[..., Awaitable[None]],
        b: _ResponseBuilder,
        reply: Reply,
        text: str,
        msg_loc: dict[str, Any],
    ) -> None:
        message = reply.error_message or "Internal error"
        if reply.failure == "sse_error":
            await send("error", code="server_error", message=message, param=None)
        elif reply.failure == "sse_error_nested":
            await send(
                "error",
                error={"type": "server_error", "code": "server_error", "message": message, "param": None},
            )
        elif reply.failure == "response_failed":
            await send(
                "response.failed",
                response=b.response(
                    "failed",
                    text=text,
                    message_status="incomplete",
                    error={"code": "server_error", "message": message},
                ),
            )
        elif reply.failure == "silent":
            try:
                await asyncio.Event().wait()  # until the client closes the stream (the handler is cancelled)
            finally:
                self.silent_streams_closed += 1
        elif reply.failure == "disconnect":
            # close() flushes what was already written, then FINs without the terminating chunk, so the
            # client gets the deltas and then an incomplete-body protocol error.
            if request.transport is not None:
                request.transport.close()
        else:
            reason = "max_output_tokens" if reply.failure == "incomplete_max_tokens" else "content_filter"
            if not reply.minimal_events:
                await send("response.output_text.done", **msg_loc, text=text, logprobs=[])
                await send(
                    "response.content_part.done", **msg_loc, part=b.text_part(text, with_annotations=True)
                )
                await send(
                    "response.output_item.done",
                    output_index=b.msg_index,
                    item=b.message_item(text, "incomplete"),
                )
            await send(
                "response.incomplete",
                response=b.response(
                    "incomplete", text=text, message_status="incomplete", incomplete_reason=reason
                ),
            )
