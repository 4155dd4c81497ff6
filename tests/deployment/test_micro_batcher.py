"""deployment/micro_batcher.py: jobs of one key that wait together are answered in one call."""

import asyncio

import pytest

from qa_seq2seq.deployment.micro_batcher import MicroBatcher
from qa_seq2seq.deployment.requests import BadRequest


def test_waiting_jobs_of_one_key_share_a_call_in_order_up_to_the_batch_size():
    calls = []

    async def run(key, items):
        calls.append((key, list(items)))
        await asyncio.sleep(0.01)
        return [f"{key}:{item}" for item in items]

    async def main():
        batcher = MicroBatcher(run, max_batch=3)
        async with batcher.running():
            first = asyncio.create_task(batcher.submit("a", [0]))  # the worker takes it alone
            await asyncio.sleep(0)
            rest = [batcher.submit(key, items) for key, items in
                    (("a", [1]), ("b", [2]), ("a", [3, 4]), ("a", [5]))]
            return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    assert first == ["a:0"] and rest == [["a:1"], ["b:2"], ["a:3", "a:4"], ["a:5"]]
    assert calls == [("a", [0]), ("a", [1, 3, 4]), ("b", [2]), ("a", [5])]


def test_a_full_queue_and_a_late_answer_are_503_and_a_failure_reaches_every_caller():
    release = asyncio.Event

    async def main():
        gate = release()

        async def run(key, items):
            await gate.wait()
            if key == "bad":
                raise RuntimeError("model failed")
            return items

        batcher = MicroBatcher(run, max_batch=8, max_queue=2, timeout=0.2)
        async with batcher.running():
            held = [asyncio.create_task(batcher.submit("a", [i])) for i in range(2)]
            await asyncio.sleep(0)
            with pytest.raises(BadRequest, match="busy: 2 requests are waiting") as busy:
                await batcher.submit("a", [9])
            assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}
            for task in held:
                with pytest.raises(BadRequest, match="not answered within 0.2 s"):
                    await task
            gate.set()
            assert await batcher.submit("a", [7]) == [7]  # and it goes on
            failed = await asyncio.gather(batcher.submit("bad", [1]), batcher.submit("bad", [2]),
                                          return_exceptions=True)
            assert [str(e) for e in failed] == ["model failed"] * 2

    asyncio.run(main())
