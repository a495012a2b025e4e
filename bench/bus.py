"""The bus's cost, as paired ratios against the raw client on the same broker, same run.

For each broker, N messages (the same encoded envelope bytes) are published one by one
while one consumer receives, decodes and acks them; throughput = N / time until the last
is handled. The raw variant uses the client directly the way the clicktrace backend does
(Redis XADD + XREADGROUP/XACK; aio-pika confirmed publish to a quorum queue + prefetch and
ack; JetStream publish + pull fetch and ack), with no tracing at all; "raw+headers" also
sends the native headers clicktrace adds (traceparent, x-correlation-id) by hand, which is
what interop with stock instrumentation costs on the wire whoever writes them.

clicktrace runs three times: "traced" with an SDK TracerProvider recording every span as lean
spans (the default; read as an exporter would, then dropped), "traced, SDK spans" the same
with ``CLICKTRACE_LEAN_SPANS=0``, and "untraced" with a no-op provider (what the library
itself costs).
Variants rotate within each round; the median of the per-round ratios is printed, for
wall-clock throughput and for this process's CPU time per message (steadier on a shared
machine).

``--instructions`` counts instructions per message under callgrind instead (the figure to
compare across runs on a loaded machine): each variant in its own process, warmed up, then run
with 0 and with ``--messages`` messages; the difference over the messages is its cost per
message (this process's instructions only: the broker's are not counted).

    .venv/bin/python bench/bus.py [--rounds 5] [--messages 1500] [--brokers redis,rabbitmq,nats]
    .venv/bin/python bench/bus.py --instructions [--messages 300] [--jobs 2] [--only raw,traced]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import callgrind  # bench/callgrind.py, beside this script
import msgspec
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NoOpTracerProvider
from spans import ReadingExporter  # bench/spans.py, beside this script

from clicktrace.bus import create_bus
from clicktrace.envelope import Envelope, encode, new_envelope
from clicktrace.ids import new_id

URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}
PAYLOAD = {"id": 42, "name": "Espresso cup", "price": 12.5, "version": 7}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _provider() -> TracerProvider:
    provider = TracerProvider()
    # Spans are read as an exporter encoding them would, then dropped.
    provider.add_span_processor(BatchSpanProcessor(ReadingExporter()))
    return provider


PROVIDER = _provider()


async def _clicktrace(broker: str, n: int, provider: Any, lean: bool = True) -> tuple[float, float]:
    topic = f"bench-{new_id().lower()}"
    os.environ["CLICKTRACE_LEAN_SPANS"] = "1" if lean else "0"  # read when the bus is built
    try:
        bus = create_bus(URLS[broker], tracer_provider=provider)
    finally:
        del os.environ["CLICKTRACE_LEAN_SPANS"]
    done = asyncio.Event()
    count = 0

    async def handler(envelope: Envelope) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    bus.subscribe(topic, handler, group="bench", honour_deadline=False)
    await bus.start()
    envelopes = [new_envelope("Bench", PAYLOAD) for _ in range(n)]
    start, cpu = time.perf_counter(), time.process_time()
    for envelope in envelopes:
        await bus.publish(topic, envelope)
    await asyncio.wait_for(done.wait(), 300)
    result = _result(n, start, cpu)
    await bus.close()
    await _cleanup(broker, topic, "bench")
    return result


def _result(n: int, start: float, cpu: float) -> tuple[float, float]:
    """(messages per second, CPU microseconds per message)."""
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6


_decoder = msgspec.json.Decoder(Envelope)


async def _raw_redis(n: int, headers: bool) -> tuple[float, float]:
    import redis.asyncio as aioredis

    topic = f"bench-{new_id().lower()}"
    client = aioredis.Redis.from_url(URLS["redis"])
    await client.xgroup_create(topic, "bench", id="0", mkstream=True)
    envelopes = [new_envelope("Bench", PAYLOAD) for _ in range(n)]

    async def consume() -> None:
        seen = 0
        while seen < n:
            reply: Any = await client.xreadgroup("bench", "c", {topic: ">"}, count=100, block=1000)
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    _decoder.decode(fields[b"body"])
                    await client.xack(topic, "bench", entry_id)
                    seen += 1

    start, cpu = time.perf_counter(), time.process_time()
    consumer = asyncio.create_task(consume())
    for envelope in envelopes:  # encoding is part of sending, as it is for clicktrace
        fields: dict[Any, Any] = {b"body": encode(envelope), **_headers(envelope, headers)}
        await client.xadd(topic, fields)
    await asyncio.wait_for(consumer, 300)
    result = _result(n, start, cpu)
    await client.delete(topic)
    await client.aclose()
    return result


async def _raw_rabbitmq(n: int, headers: bool) -> tuple[float, float]:
    import aio_pika

    topic = f"bench-{new_id().lower()}"
    connection = await aio_pika.connect_robust(URLS["rabbitmq"])
    channel = await connection.channel(on_return_raises=True)
    exchange = await channel.declare_exchange("bench-raw", aio_pika.ExchangeType.DIRECT)
    queue = await channel.declare_queue(topic, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key=topic)
    envelopes = [new_envelope("Bench", PAYLOAD) for _ in range(n)]
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=100)
    consume_queue = await consume_channel.get_queue(topic, ensure=False)

    async def consume() -> None:
        seen = 0
        async with consume_queue.iterator() as messages:
            async for message in messages:
                _decoder.decode(message.body)
                await message.ack()
                seen += 1
                if seen == n:
                    return

    start, cpu = time.perf_counter(), time.process_time()
    consumer = asyncio.create_task(consume())
    for envelope in envelopes:
        await exchange.publish(
            aio_pika.Message(
                encode(envelope),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=envelope.metadata.message_id,
                headers=_headers(envelope, headers),
            ),
            routing_key=topic,
            mandatory=True,
        )
    await asyncio.wait_for(consumer, 300)
    result = _result(n, start, cpu)
    await channel.queue_delete(topic)
    await connection.close()
    return result


async def _raw_nats(n: int, headers: bool) -> tuple[float, float]:
    import nats
    from nats.js.api import ConsumerConfig, StreamConfig

    topic = f"bench-{new_id().lower()}"
    stream = f"BENCH_{new_id()}"
    nc = await nats.connect(URLS["nats"])
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[topic], duplicate_window=120))
    await js.add_consumer(stream, ConsumerConfig(durable_name="bench", ack_wait=30))
    psub = await js.pull_subscribe_bind(durable="bench", stream=stream)
    envelopes = [new_envelope("Bench", PAYLOAD) for _ in range(n)]

    async def consume() -> None:
        seen = 0
        while seen < n:
            try:
                msgs = await psub.fetch(100, timeout=1.0)
            except TimeoutError:
                continue
            for msg in msgs:
                _decoder.decode(msg.data)
                await msg.ack()
                seen += 1

    start, cpu = time.perf_counter(), time.process_time()
    consumer = asyncio.create_task(consume())
    for envelope in envelopes:
        native = {"Nats-Msg-Id": envelope.metadata.message_id, **_headers(envelope, headers)}
        await js.publish(topic, encode(envelope), headers=native)
    await asyncio.wait_for(consumer, 300)
    result = _result(n, start, cpu)
    await psub.unsubscribe()
    await js.delete_stream(stream)
    await nc.close()
    return result


def _headers(envelope: Envelope, wanted: bool) -> dict[str, Any]:
    """The native headers clicktrace adds, for the raw variant that sends them by hand."""
    if not wanted:
        return {}
    return {"traceparent": TRACEPARENT, "x-correlation-id": envelope.metadata.correlation_id}


RAW: dict[str, Callable[[int, bool], Awaitable[tuple[float, float]]]] = {
    "redis": _raw_redis,
    "rabbitmq": _raw_rabbitmq,
    "nats": _raw_nats,
}


async def _cleanup(broker: str, topic: str, group: str) -> None:
    if broker == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(URLS["redis"])
        await client.delete(topic)
        await client.aclose()
    elif broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(URLS["rabbitmq"])
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(f"{topic}:{group}")
            await channel.queue_delete(f"{topic}:{group}:dlq")
    else:
        import nats

        from clicktrace.bus._nats import stream_name

        nc = await nats.connect(URLS["nats"])
        await nc.jetstream().delete_stream(stream_name(topic))
        await nc.close()


Sample = tuple[float, float]  # (messages per second, CPU microseconds per message)


async def _measure(broker: str, rounds: int, messages: int) -> dict[str, list[Sample]]:
    untraced = NoOpTracerProvider()
    variants: list[tuple[str, Callable[[], Awaitable[Sample]]]] = [
        ("raw", partial(RAW[broker], messages, False)),
        ("raw+headers", partial(RAW[broker], messages, True)),
        ("traced", partial(_clicktrace, broker, messages, PROVIDER)),
        ("traced-sdk", partial(_clicktrace, broker, messages, PROVIDER, False)),
        ("untraced", partial(_clicktrace, broker, messages, untraced)),
    ]
    runs: dict[str, list[Sample]] = {name: [] for name, _ in variants}
    await RAW[broker](min(200, messages), True)  # warm up connections and code paths
    await _clicktrace(broker, min(200, messages), PROVIDER)
    for i in range(rounds):
        k = i % len(variants)
        for name, run in variants[k:] + variants[:k]:  # rotate the order
            runs[name].append(await run())
    return runs


def _row(broker: str, runs: dict[str, list[Sample]]) -> str:
    def med(name: str, index: int) -> float:
        return statistics.median(r[index] for r in runs[name])

    def ratio(name: str, base: str) -> str:
        pairs = list(zip(runs[name], runs[base], strict=True))
        wall = statistics.median(o[0] / r[0] for o, r in pairs)  # throughput: ours / raw
        cpu = statistics.median(r[1] / o[1] for o, r in pairs)  # CPU per message: raw / ours
        return f"{wall:.2f}x / {cpu:.2f}x"

    return (
        f"| {broker} | {med('raw', 0):,.0f} | {med('raw+headers', 0):,.0f} "
        f"| {med('traced', 0):,.0f} | {med('untraced', 0):,.0f} "
        f"| {ratio('traced', 'raw')} | {ratio('traced-sdk', 'raw')} | {ratio('untraced', 'raw')} "
        f"| {ratio('traced', 'raw+headers')} | {ratio('untraced', 'raw+headers')} "
        f"| {med('raw', 1):.0f} / {med('raw+headers', 1):.0f} / {med('traced', 1):.0f} / "
        f"{med('untraced', 1):.0f} |"
    )


COUNTED = ("raw", "raw+headers", "traced", "untraced")
WARM_UP = 100


def _variant(broker: str, name: str, n: int) -> Awaitable[Sample]:
    if name in ("raw", "raw+headers"):
        return RAW[broker](n, name == "raw+headers")
    return _clicktrace(broker, n, PROVIDER if name == "traced" else NoOpTracerProvider())


def count(broker: str, name: str, n: int) -> None:
    """The child of ``--instructions``: one broker and variant, warmed up, then ``n``
    messages (none when ``n`` is 0: the same process less the messages)."""

    async def go() -> None:
        await _variant(broker, name, WARM_UP)
        if n:
            await _variant(broker, name, n)
        PROVIDER.shutdown()  # the spans still queued are exported (and counted) here

    asyncio.run(go())


def instructions(messages: int, jobs: int, brokers: list[str], only: list[str]) -> None:
    if not callgrind.available():
        print(callgrind.MISSING)
        return
    chosen = [v for v in COUNTED if v in only]
    runs = [(b, v) for b in brokers for v in chosen]
    per = callgrind.per_operation(
        __file__, runs, lambda run, k: ["--count", *run, "--messages", str(k)], messages, jobs
    )
    print(f"instructions (callgrind), {messages} messages after {WARM_UP} warm-up, per message")
    print(f"| broker | {' | '.join(chosen)} | raw / traced | raw / untraced |")
    print(f"|---|{'---:|' * len(chosen)}---:|---:|")
    for b in brokers:
        got = {v: per[b, v] for v in chosen}
        cells = " | ".join(f"{got[v]:,.0f}" for v in chosen)
        print(f"| {b} | {cells} | {_over_raw(got, 'traced')} | {_over_raw(got, 'untraced')} |")


def _over_raw(got: dict[str, float], variant: str) -> str:
    return f"{got['raw'] / got[variant]:.2f}x" if "raw" in got and variant in got else "-"


async def main(rounds: int, messages: int, brokers: list[str]) -> None:
    print(f"bus: {messages} messages per round, {rounds} rounds, median of paired ratios")
    print("ratios are wall-clock throughput / CPU per message, clicktrace vs the raw client\n")
    print(
        "| broker | raw msg/s | raw+headers msg/s | traced msg/s | untraced msg/s "
        "| traced vs raw | traced, SDK spans vs raw | untraced vs raw | traced vs raw+headers "
        "| untraced vs raw+headers | CPU µs/msg raw / raw+h / traced / untraced |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for broker in brokers:
        print(_row(broker, await _measure(broker, rounds, messages)), flush=True)
    PROVIDER.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=None, help="1500; 300 with --instructions")
    parser.add_argument("--brokers", default="redis,rabbitmq,nats")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only", default=",".join(COUNTED), help="comma-separated variants for --instructions"
    )
    parser.add_argument("--count", nargs=2, metavar=("BROKER", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    if args.count:
        count(args.count[0], args.count[1], args.messages)
    elif args.instructions:
        instructions(args.messages or 300, args.jobs, brokers, args.only.split(","))
    else:
        asyncio.run(main(args.rounds, args.messages or 1500, brokers))
