"""The fake Yandex's folder quota (429 beyond N concurrent generations), and GenerationQuota keeping a
crowd of questions within it through the real openai client."""

from __future__ import annotations

import asyncio

import openai
import pytest
from redis.asyncio import Redis

from bot.assistant.quota import GenerationQuota
from bot.keys import RedisKeys
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.quota import GenerationQuotaFake

MODEL_NAME = "yandexgpt-5.1"


def client_for(yandex: FakeYandex) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=yandex.base_url, api_key=yandex.api_key, project=yandex.folder_id, max_retries=0
    )


async def stream_to_end(client: openai.AsyncOpenAI, model: str) -> str:
    async with client.responses.with_streaming_response.create(
        model=model, input="hi", stream=True
    ) as response:
        return "".join([line async for line in response.iter_lines()])


async def test_the_next_generation_beyond_the_quota_gets_429(yandex: FakeYandex) -> None:
    yandex.quota = GenerationQuotaFake(limit=2)
    yandex.responder = lambda body: Reply(text="slow answer", chunk_size=2, delay=0.05)
    client = client_for(yandex)
    model = f"gpt://{yandex.folder_id}/{MODEL_NAME}"
    running = [asyncio.create_task(stream_to_end(client, model)) for _ in range(2)]
    await yandex.wait_until(lambda: yandex.open_streams == 2)

    with pytest.raises(openai.RateLimitError) as caught:
        await stream_to_end(client, model)

    error = caught.value
    assert error.status_code == 429
    assert isinstance(error.body, dict)
    assert error.body["code"] == "rate_limit_exceeded"
    assert "gauge quota limit exceed: allowed 2 requests" in error.body["message"]
    assert error.body["status"] == "RESOURCE_EXHAUSTED"
    await asyncio.gather(*running)
    assert yandex.quota.peak == 2 and yandex.quota.rejected == 1
    # The quota is back once the streams ended: a scripted reply was not used up by the refusal.
    yandex.script(Reply(text="after"))
    assert "after" in await stream_to_end(client, model)
    await client.close()


async def test_generation_quota_keeps_a_crowd_within_the_folder_quota(
    yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> None:
    yandex.quota = GenerationQuotaFake(limit=3)
    yandex.responder = lambda body: Reply(text="a b c d", chunk_size=2, delay=0.02)
    client = client_for(yandex)
    model = f"gpt://{yandex.folder_id}/{MODEL_NAME}"
    quota = GenerationQuota(redis, keys=RedisKeys(redis_prefix), limit=3, lease_seconds=3, poll_seconds=0.1)

    async def ask(index: int) -> str:
        async with quota.slot(f"q{index}"):
            return await stream_to_end(client, model)

    async with asyncio.timeout(20):
        answers = await asyncio.gather(*(ask(i) for i in range(15)))

    assert all("response.completed" in answer for answer in answers)
    assert yandex.quota.rejected == 0
    assert yandex.quota.peak == 3
    await client.close()
