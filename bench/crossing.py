"""What Redis costs a message when several worker processes share it.

Two figures: an event crossing Redis from one worker process to another,
and a message's two limits (per visitor, per address) counted in Redis.

Two processes under gevent, as gunicorn's gevent worker runs them, and
nothing else: one publishes events at a fixed rate to the chats' channels,
the other has a subscriber on every one of them. No sockets to customers, no
database, so the figure holds still from run to run far better than the
two-process delivery table, where the crossing is a small part of much work.
The baseline is the same publisher on the in-process hub, its subscribers in
its own process: what an event costs when nothing crosses. The limits are
counted at the same rate, in Redis and, for the baseline, in the process.

Run as ``python -m bench.crossing publish|listen ...`` by :func:`crossing`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import typing as t

from bench import targets
from bench.report import table
from bench.report import us

CHANNELS = 500
#: Each figure is the median of this many runs, the kinds taking turns.
RUNS = 3
EVENT = {
    "type": "message",
    "author": "visitor",
    "body": "Har I regnjakken i blå, str. M? Og kan den sendes i dag?",
}


def crossing(rate: float, seconds: float) -> str:
    """The tables: CPU per event in each process, with and without Redis;
    CPU per message's limits, counted in Redis or in the process."""
    if targets.REDIS_SERVER is None:
        return "(No redis-server: the crossing tables need one.)\n"
    redis = targets.RedisServer().start()
    try:
        local: list[float] = []
        published: list[float] = []
        received: list[float] = []
        counted_here: list[float] = []
        counted_in_redis: list[float] = []
        for _ in range(RUNS):
            local.append(_run("publish", "local", rate, seconds))
            sent, listened = _across(redis.url, rate, seconds)
            published.append(sent)
            received.append(listened)
            counted_here.append(_run("limits", "local", rate, seconds))
            counted_in_redis.append(_run("limits", redis.url, rate, seconds))
    finally:
        redis.close()
    return _crossing_table(rate, seconds, local, published, received) + _limits_table(
        rate, seconds, counted_here, counted_in_redis
    )


def _crossing_table(
    rate: float,
    seconds: float,
    local: list[float],
    published: list[float],
    received: list[float],
) -> str:
    alone, sending, listening = map(statistics.median, (local, published, received))
    rows = [
        ["in-process hub (baseline)", us(alone), "-", us(alone)],
        [
            "Redis hub",
            us(sending),
            us(listening),
            f"{us(sending + listening)} (+{us(sending + listening - alone)})",
        ],
    ]
    return table(
        f"An event crossing Redis, {rate:g} events/s to {CHANNELS} channels,"
        f" CPU per event (median of {RUNS} runs of {seconds:g} s)",
        ["hub", "publishing process", "receiving process", "both"],
        rows,
    )


def _limits_table(
    rate: float, seconds: float, here: list[float], in_redis: list[float]
) -> str:
    alone, shared = statistics.median(here), statistics.median(in_redis)
    return table(
        f"A message's two limits counted, {rate:g} messages/s, CPU per message"
        f" (median of {RUNS} runs of {seconds:g} s)",
        ["counted", "CPU per message", "of it, Redis's round trip"],
        [
            ["in the process (one process, baseline)", us(alone), "-"],
            ["in Redis (several processes)", us(shared), us(shared - alone)],
        ],
    )


def _across(url: str, rate: float, seconds: float) -> tuple[float, float]:
    """(publisher's, listener's) CPU per event, each in its own process."""
    listener = _start("listen", url)
    try:
        assert listener.stdout is not None
        listener.stdout.readline()  # subscribed
        events, sending = _publish("publish", url, rate, seconds)
        time.sleep(0.5)
        out, _ = listener.communicate("stop\n", timeout=30)
    finally:
        listener.kill()
    got, cpu = out.split()
    if int(got) < events:
        raise RuntimeError(f"{events - int(got)} of {events} events never arrived")
    return sending, float(cpu) / int(got)


def _publish(role: str, url: str, rate: float, seconds: float) -> tuple[int, float]:
    """Publish (or count limits) for ``seconds``; how many, and CPU per one."""
    process = _start(role, url, str(rate), str(seconds))
    out, _ = process.communicate(timeout=seconds + 60)
    events, cpu = out.split()
    return int(events), float(cpu) / int(events)


def _run(role: str, url: str, rate: float, seconds: float) -> float:
    return _publish(role, url, rate, seconds)[1]


def _start(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", GEVENT_MAIN, *arguments],
        cwd=targets.ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


#: Runs this module under gevent, patched before anything imports a socket.
GEVENT_MAIN = (
    "from gevent import monkey; monkey.patch_all(); import runpy;"
    " runpy.run_module('bench.crossing', run_name='__main__', alter_sys=True)"
)


# The two processes.


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _hub(url: str) -> t.Any:
    from flask_livehelp.hub import Hub
    from flask_livehelp.redis_hub import RedisHub

    return Hub() if url == "local" else RedisHub(url, prefix="bench-crossing:")


def _at_rate(work: t.Callable[[int], None], rate: float, seconds: float) -> None:
    """Do ``work(n)`` ``rate`` times a second; print how often, and the CPU."""
    import gevent

    began, start, done = _cpu(), time.monotonic(), 0
    while time.monotonic() - start < seconds:
        work(done)
        done += 1
        gevent.sleep(max(0.0, start + done / rate - time.monotonic()))
    print(done, _cpu() - began, flush=True)


def _limits(url: str, rate: float, seconds: float) -> None:
    from flask_livehelp.services.limits import Limit
    from flask_livehelp.services.limits import Limits
    from flask_livehelp.services.limits import MemoryCounts
    from flask_livehelp.services.limits import RedisCounts

    counts = MemoryCounts() if url == "local" else RedisCounts(url, "bench-limits:")
    limits = Limits(counts)

    def count(number: int) -> None:
        # As a message of the benchmark's shop: all from one address.
        visitor = Limit("VISITOR_MESSAGES_PER_MINUTE", number % CHANNELS, 10**5, 60)
        address = Limit("MESSAGES_PER_MINUTE_PER_IP", "127.0.0.1", 10**7, 60)
        assert limits.exceeded([visitor, address]) is None

    count(0)  # connected before the clock starts
    _at_rate(count, rate, seconds)


def _publisher(url: str, rate: float, seconds: float) -> None:
    import gevent

    hub = _hub(url)
    heard = [0]

    def count(channel: str, text: str) -> None:
        heard[0] += 1

    if url == "local":
        # What the listener does, here: the baseline delivers as well.
        for number in range(CHANNELS):
            hub.subscribe(count, f"conversation:{number}")
    hub.is_healthy()  # connected before the clock starts
    gevent.sleep(0.5)

    def publish(number: int) -> None:
        channel = number % CHANNELS
        hub.publish(f"conversation:{channel}", EVENT | {"conversation": channel})

    _at_rate(publish, rate, seconds)
    hub.close()  # what is queued goes out


def _listener(url: str) -> None:
    import gevent

    hub = _hub(url)
    heard = [0]
    began: list[float] = []

    def count(channel: str, text: str) -> None:
        if not began:
            began.append(_cpu())
        heard[0] += 1

    for number in range(CHANNELS):
        hub.subscribe(count, f"conversation:{number}")
    print("subscribed", flush=True)
    # Told to stop on stdin, read without blocking the hub's greenlets.
    gevent.get_hub().threadpool.apply(sys.stdin.readline)
    print(heard[0], _cpu() - began[0] if began else 0.0, flush=True)


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "publish":
        _publisher(rest[0], float(rest[1]), float(rest[2]))
    elif role == "limits":
        _limits(rest[0], float(rest[1]), float(rest[2]))
    else:
        _listener(rest[0])
