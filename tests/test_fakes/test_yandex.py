"""The Yandex Responses fake, exercised through the real ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)

from tests.fakes.yandex import FakeYandex, Reply, split_chunks

FOLDER = "b1gtestfolder"
MODEL = f"gpt://{FOLDER}/yandexgpt-5.1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeYandex]:
    server = FakeYandex()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeYandex) -> AsyncIterator[openai.AsyncOpenAI]:
    # max_retries=0: a retried 429/500 would hide the error the test is looking for.
    c = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-api-key", project=FOLDER, max_retries=0)
    yield c
    await c.close()


async def collect(client: openai.AsyncOpenAI, **kwargs: Any) -> list[Any]:
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True, **kwargs)
    return [event async for event in stream]


def deltas(events: list[Any]) -> list[str]:
    return [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]


async def test_streamed_text_arrives_as_typed_deltas(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    text = "Привет! This is a longer answer that spans several deltas."
    fake.script(Reply(text=text, chunk_size=5))
    events = await collect(client, instructions="Be brief", temperature=0.3)

    assert [e.type for e in events[:4]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert [e.type for e in events[-4:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert isinstance(events[0], ResponseCreatedEvent)
    assert events[0].response.id.startswith("resp_")
    parts = deltas(events)
    assert "".join(parts) == text
    assert all(len(p) <= 5 for p in parts)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = next(e for e in events if isinstance(e, ResponseTextDoneEvent))
    assert done.text == text

    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.status == "completed"
    assert completed.response.model == MODEL
    assert completed.response.output_text == text
    usage = completed.response.usage
    assert usage is not None
    assert usage.output_tokens == len(text) // 4
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0

    recorded = fake.requests[-1]
    assert recorded.body["stream"] is True
    assert recorded.headers["authorization"] == "Bearer test-api-key"
    assert recorded.headers["openai-project"] == FOLDER
    assert fake.last_input() == [{"role": "user", "content": "Hi"}]


async def test_sentence_sized_chunks(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    text = "First sentence. Second one! Third?\nA new line\n\nand a tail"
    fake.script(Reply(text=text, chunk_size=0))
    parts = deltas(await collect(client))
    assert parts == ["First sentence. ", "Second one! ", "Third?\n", "A new line\n\n", "and a tail"]


@pytest.mark.parametrize("text", ["", "x", "...", "a.b", "no terminator", "end.\n", "?!\n\n?", "a\r\nb. c"])
def test_split_chunks_rejoins(text: str) -> None:
    for size in (0, 1, 3, 8):
        assert "".join(split_chunks(text, size)) == text


async def test_minimal_events(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="Only deltas here", chunk_size=4, minimal_events=True, usage_output_tokens=42))
    events = await collect(client)
    assert {e.type for e in events[:-1]} == {"response.output_text.delta"}
    assert isinstance(events[-1], ResponseCompletedEvent)
    assert "".join(deltas(events)) == "Only deltas here"
    assert events[-1].response.usage is not None
    assert events[-1].response.usage.output_tokens == 42


async def test_flat_error_event_is_yielded_not_raised(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    # The documented flat shape has no nested "error" key, which is what openai's SSE loop checks for,
    # so the client yields it as a typed event and the consumer must treat it as terminal itself.
    fake.script(Reply(text="Partial answer that breaks", fail_after=7, failure="sse_error"))
    events = await collect(client)
    assert "".join(deltas(events)) == "Partial"
    last = events[-1]
    assert isinstance(last, ResponseErrorEvent)
    assert (last.code, last.message, last.param) == ("server_error", "Internal error", None)


async def test_nested_error_event_raises_api_error(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(
        Reply(
            text="Partial answer that breaks", fail_after=7, failure="sse_error_nested", error_message="boom"
        )
    )
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError) as exc_info:
        async for event in stream:
            if isinstance(event, ResponseTextDeltaEvent):
                got.append(event.delta)
    assert "".join(got) == "Partial"
    err = exc_info.value
    assert not isinstance(err, openai.APIStatusError)
    assert (err.message, err.code, err.type) == ("boom", "server_error", "server_error")


async def test_response_failed_event(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="abcdefghij", chunk_size=3, fail_after=4, failure="response_failed"))
    events = await collect(client)
    assert "".join(deltas(events)) == "abcd"
    last = events[-1]
    assert isinstance(last, ResponseFailedEvent)
    assert last.response.status == "failed"
    assert last.response.error is not None
    assert last.response.error.code == "server_error"
    assert last.response.error.message == "Internal error"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [("incomplete_max_tokens", "max_output_tokens"), ("incomplete_content_filter", "content_filter")],
)
async def test_incomplete_event(
    fake: FakeYandex, client: openai.AsyncOpenAI, failure: str, reason: str
) -> None:
    fake.script(Reply(text="Cut short here", fail_after=9, failure=failure))
    events = await collect(client)
    last = events[-1]
    assert isinstance(last, ResponseIncompleteEvent)
    assert last.response.status == "incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == reason
    assert last.response.output_text == "Cut short"
    assert "".join(deltas(events)) == "Cut short"


async def test_disconnect_mid_stream(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="This will be cut off", chunk_size=4, fail_after=8, failure="disconnect"))
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            if isinstance(event, ResponseTextDeltaEvent):
                got.append(event.delta)
    assert "".join(got) == "This wil"
    await fake.wait_until(lambda: fake.open_streams == 0)
    assert fake.closed_by_client == 0


async def test_a_silent_stream_sends_nothing_more_until_the_client_times_out(fake: FakeYandex) -> None:
    fake.script(Reply(text="This goes quiet", chunk_size=4, fail_after=8, failure="silent"))
    quick = openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="test-api-key", project=FOLDER, max_retries=0, timeout=1.0
    )
    got: list[str] = []
    stream = await quick.responses.create(model=MODEL, input="Hi", stream=True)
    with pytest.raises(openai.APITimeoutError):
        async for event in stream:
            if isinstance(event, ResponseTextDeltaEvent):
                got.append(event.delta)
    await quick.close()
    assert "".join(got) == "This goe"
    await fake.wait_until(lambda: fake.silent_streams_closed == 1 and fake.open_streams == 0)


async def test_http_429_raises_rate_limit_error(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(http_status=429))
    with pytest.raises(openai.RateLimitError) as exc_info:
        await client.responses.create(model=MODEL, input="Hi", stream=True)
    assert exc_info.value.status_code == 429
    assert exc_info.value.code == "rate_limit_exceeded"
    assert exc_info.value.type == "rate_limit_exceeded"


async def test_http_500_raises_internal_server_error(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(http_status=500))
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model=MODEL, input="Hi", stream=True)


async def test_bad_model_uri(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    for model in ("yandexgpt-5.1", "gpt://otherfolder/yandexgpt-5.1"):
        with pytest.raises(openai.BadRequestError, match="Failed to parse model URI"):
            await client.responses.create(model=model, input="Hi", stream=True)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "extra",
    [
        {"truncation": "auto"},
        {"reasoning": {"effort": "low"}},
        {"metadata": {"a": "b"}},
        {"include": ["file_search_call.results"]},
        {"service_tier": "auto"},
        {"temperature": 1.5},
        {"tools": [{"type": "file_search", "vector_store_ids": ["vs1", "vs2"]}]},
    ],
)
async def test_rejected_parameters(client: openai.AsyncOpenAI, extra: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as exc_info:
        await client.responses.create(model=MODEL, input="Hi", stream=True, **extra)
    assert exc_info.value.type == "invalid_request_error"


async def test_auth_is_checked(fake: FakeYandex) -> None:
    bad_key = openai.AsyncOpenAI(base_url=fake.base_url, api_key="wrong", project=FOLDER, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad_key.responses.create(model=MODEL, input="Hi", stream=True)

    api_key_scheme = openai.AsyncOpenAI(
        base_url=fake.base_url,
        api_key="unused",
        project=FOLDER,
        max_retries=0,
        default_headers={"Authorization": "Api-Key test-api-key"},
    )
    response = await api_key_scheme.responses.create(model=MODEL, input="Hi")
    assert response.output_text == "Hello!"
    assert fake.requests[-1].headers["authorization"] == "Api-Key test-api-key"
    await bad_key.close()
    await api_key_scheme.close()


async def test_project_header_is_checked(fake: FakeYandex) -> None:
    for project in (None, "b1gotherfolder"):
        c = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-api-key", project=project, max_retries=0)
        with pytest.raises(openai.PermissionDeniedError):
            await c.responses.create(model=MODEL, input="Hi", stream=True)
        await c.close()


async def test_early_close_is_seen_by_the_fake(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="word " * 200, chunk_size=5, delay=0.02))
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True)
    async for event in stream:
        if isinstance(event, ResponseTextDeltaEvent):
            break
    assert fake.open_streams == 1
    await stream.close()
    await fake.wait_until(lambda: fake.open_streams == 0 and fake.closed_by_client == 1)


async def test_citations_and_tool_calls(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    citations = [
        {"type": "file_citation", "file_id": "f1", "filename": "handbook.pdf", "index": 0},
        {"type": "url_citation", "url": "https://example.com/a"},
    ]
    fake.script(Reply(text="See the handbook.", citations=citations, tool_calls=["file_search"]))
    events = await collect(client, tools=[{"type": "file_search", "vector_store_ids": ["vs1"]}])
    types = [e.type for e in events]
    assert types.index("response.file_search_call.completed") < types.index("response.output_text.delta")
    for phase in ("in_progress", "searching", "completed"):
        assert f"response.file_search_call.{phase}" in types

    added = [e for e in events if isinstance(e, ResponseOutputTextAnnotationAddedEvent)]
    assert [e.annotation_index for e in added] == [0, 1]
    assert added[0].annotation is not None
    assert added[0].annotation.type == "file_citation"
    assert added[0].annotation.filename == "handbook.pdf"
    # Yandex fills only `url` for web citations; the typed model is built without validation, so the
    # missing title/start_index are simply absent attributes.
    assert added[1].annotation is not None
    assert added[1].annotation.url == "https://example.com/a"
    assert getattr(added[1].annotation, "title", None) is None

    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    output = completed.response.output
    assert [item.type for item in output] == ["file_search_call", "message"]
    assert output[1].type == "message"
    content = output[1].content[0]
    assert content.type == "output_text"
    assert [a.type for a in content.annotations] == ["file_citation", "url_citation"]
    assert added[0].output_index == 1


async def test_citations_can_come_only_in_the_final_output(
    fake: FakeYandex, client: openai.AsyncOpenAI
) -> None:
    citation = {"type": "file_citation", "file_id": "f1", "filename": "handbook.pdf", "index": 0}
    fake.script(Reply(text="See the handbook.", citations=[citation], citations_streamed=False))
    events = await collect(client)
    assert not any(isinstance(e, ResponseOutputTextAnnotationAddedEvent) for e in events)
    part_done = next(e for e in events if e.type == "response.content_part.done")
    item_done = next(e for e in events if e.type == "response.output_item.done")
    completed = events[-1]
    assert [a.filename for a in part_done.part.annotations] == ["handbook.pdf"]
    assert [a.filename for a in item_done.item.content[0].annotations] == ["handbook.pdf"]
    assert [a.filename for a in completed.response.output[0].content[0].annotations] == ["handbook.pdf"]

    fake.script(Reply(text="Minimal.", citations=[citation], minimal_events=True))
    events = await collect(client)
    assert [e.type for e in events if "delta" not in e.type] == ["response.completed"]
    assert events[-1].response.output[0].content[0].annotations[0].filename == "handbook.pdf"


async def test_file_search_items_can_carry_their_results(
    fake: FakeYandex, client: openai.AsyncOpenAI
) -> None:
    found = [{"file_id": "f1", "filename": "handbook.pdf", "score": 0.9, "text": "28 days", "attributes": {}}]
    fake.script(Reply(text="Found.", tool_calls=["file_search"], search_results=found))
    events = await collect(client, tools=[{"type": "file_search", "vector_store_ids": ["vs1"]}])
    done = next(e for e in events if e.type == "response.output_item.done")
    assert done.item.type == "file_search_call"
    assert [r.filename for r in done.item.results] == ["handbook.pdf"]
    fake.script(Reply(text="Found.", tool_calls=["file_search"]))
    events = await collect(client, tools=[{"type": "file_search", "vector_store_ids": ["vs1"]}])
    assert next(e for e in events if e.type == "response.output_item.done").item.results is None


@pytest.mark.parametrize(
    ("status", "grpc_code", "grpc_status", "error_class"),
    [
        (400, 3, "INVALID_ARGUMENT", openai.BadRequestError),
        (401, 16, "UNAUTHENTICATED", openai.AuthenticationError),
        (403, 7, "PERMISSION_DENIED", openai.PermissionDeniedError),
        (429, 8, "RESOURCE_EXHAUSTED", openai.RateLimitError),
        (500, 13, "INTERNAL", openai.InternalServerError),
        (503, 14, "UNAVAILABLE", openai.InternalServerError),
        (504, 4, "DEADLINE_EXCEEDED", openai.InternalServerError),
    ],
)
async def test_error_bodies_follow_yandex_codes(
    fake: FakeYandex,
    client: openai.AsyncOpenAI,
    status: int,
    grpc_code: int,
    grpc_status: str,
    error_class: type[openai.APIStatusError],
) -> None:
    fake.script(Reply(http_status=status, retry_after=3 if status == 429 else None))
    with pytest.raises(error_class) as caught:
        await client.responses.create(model=MODEL, input="Hi", stream=True)
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict)
    assert error.body["grpcCode"] == grpc_code and error.body["status"] == grpc_status
    assert error.body["httpCode"] == status and error.body["message"]
    if status == 429:
        assert error.response.headers["retry-after"] == "3"
        assert error.code == "rate_limit_exceeded"


async def test_retired_and_unknown_models_are_refused_with_400(
    fake: FakeYandex, client: openai.AsyncOpenAI
) -> None:
    for name, said in (("yandexgpt-4", "retired"), ("no-such-model", "no such model")):
        with pytest.raises(openai.BadRequestError, match="invalid model_uri") as caught:
            await client.responses.create(model=f"gpt://{FOLDER}/{name}", input="Hi", stream=True)
        assert said in caught.value.message
        assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "model"
    for name in ("yandexgpt/latest", "yandexgpt-lite/rc", "qwen3-235b-a22b-fp8"):
        await collect_model(client, f"gpt://{FOLDER}/{name}")


async def collect_model(client: openai.AsyncOpenAI, model: str) -> None:
    stream = await client.responses.create(model=model, input="Hi", stream=True)
    assert [event async for event in stream][-1].type == "response.completed"


async def test_web_search_tool_call(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="Found it.", tool_calls=["web_search"]))
    events = await collect(client, tools=[{"type": "web_search"}])
    types = [e.type for e in events]
    assert "response.web_search_call.searching" in types
    assert events[-1].response.output[0].type == "web_search_call"


async def test_non_streaming_response(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script("Plain answer")
    response = await client.responses.create(
        model=MODEL,
        input=[{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}],
    )
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output[0].type == "message"
    assert response.output[0].content[0].type == "output_text"
    assert response.output[0].content[0].text == "Plain answer"
    assert response.usage is not None
    assert fake.last_input() == [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]


async def test_responder_and_default_reply(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    assert "".join(deltas(await collect(client))) == "Hello!"
    fake.responder = lambda body: f"echo {body['input']}"
    assert "".join(deltas(await collect(client))) == "echo Hi"
    fake.script(Reply(text="scripted first"))
    assert "".join(deltas(await collect(client))) == "scripted first"
    assert "".join(deltas(await collect(client))) == "echo Hi"


async def test_delays(fake: FakeYandex, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="abcdef", chunk_size=2, first_delay=0.2, delay=0.05))
    started = time.monotonic()
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True)
    first_at: float | None = None
    async for event in stream:
        if isinstance(event, ResponseTextDeltaEvent) and first_at is None:
            first_at = time.monotonic() - started
    total = time.monotonic() - started
    assert first_at is not None
    assert first_at >= 0.18
    assert total >= 0.28


async def test_unknown_path_is_404(fake: FakeYandex) -> None:
    async with httpx2.AsyncClient() as http:
        r = await http.get(
            f"{fake.base_url}/nope",
            headers={"Authorization": "Bearer test-api-key", "OpenAI-Project": FOLDER},
        )
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"


async def test_input_image_parts_are_validated_and_recorded(
    fake: FakeYandex, client: openai.AsyncOpenAI
) -> None:
    import base64

    picture = b"\xff\xd8\xff\xe0 a jpeg"
    url = "data:image/jpeg;base64," + base64.b64encode(picture).decode()

    def asking(image_url: str) -> list[Any]:
        parts = [
            {"type": "input_text", "text": "What is it?"},
            {"type": "input_image", "image_url": image_url},
        ]
        return [{"role": "user", "content": parts}]

    vision = f"gpt://{FOLDER}/gemma-3-27b-it"
    fake.script("A picture.")
    response = await client.responses.create(model=vision, input=asking(url))  # type: ignore[arg-type]
    assert response.output_text == "A picture."
    assert fake.requests[-1].images() == [picture]
    assert fake.last_input() == [{"role": "user", "content": "What is it?"}]
    refusals = {
        MODEL: "does not support image input",  # a text model cannot see
        vision: "base64 data URL",  # a remote URL (a Telegram file URL holds the bot token) is not fetched
    }
    for model, message in refusals.items():
        image_url = url if model == MODEL else "https://api.telegram.org/file/bot123:SECRET/photos/1.jpg"
        with pytest.raises(openai.BadRequestError, match=message):
            await client.responses.create(model=model, input=asking(image_url))  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="not valid base64"):
        await client.responses.create(model=vision, input=asking("data:image/png;base64,abc"))  # type: ignore[arg-type]
