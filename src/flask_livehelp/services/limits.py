"""How often one visitor, token or address may do something, in every process.

A limit kept on the socket was reset by opening a new socket; these follow
the person instead: the visitor, their token and their IP address (the
client's, behind a proxy once the host applies werkzeug's ``ProxyFix``).
Counts are kept per fixed window. With the Redis hub they live in Redis, so
every worker process sees the same count; otherwise in this process, which
is then the only one. While Redis is away, each process counts on its own.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import logging
import os
import socket
import threading
import time
import typing as t

from .. import redis_wire

if t.TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


def seconds_left(window: int, now: float | None = None) -> float:
    """Until the current window ends; windows start at multiples of ``window``."""
    now = time.time() if now is None else now
    return window - now % window


class MemoryCounts:
    """Counts in this process only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}

    def add(self, key: str, window: int) -> int:
        """Count one more for ``key`` in its current window; the count so far."""
        now = time.time()
        with self._lock:
            if len(self._counts) > 50_000:
                self._forget(now)
            ends, count = self._counts.get(key, (0.0, 0))
            if ends <= now:
                ends, count = now + seconds_left(window, now), 0
            self._counts[key] = (ends, count + 1)
            return count + 1

    def add_all(self, keys: list[tuple[str, int]]) -> list[int]:
        """:meth:`add` for each (key, window); the counts so far."""
        return [self.add(key, window) for key, window in keys]

    def _forget(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[0] > now}


class RedisClient:
    """A connection to the Redis of the hub, made again in a forked process."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._client: redis.Redis | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        #: Connections of :meth:`connection` between two uses.
        self._idle: list[redis.Connection] = []

    def client(self) -> redis.Redis:
        import redis  # an optional extra: only with LIVEHELP_HUB_URL

        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            # One client for all: the sockets a fresh process opens at once
            # each made their own, and a client replaced and collected closed
            # its connections under whoever still used them.
            if self._client is None or self._pid != os.getpid():
                self._client = redis.Redis.from_url(
                    self.url, socket_connect_timeout=1, socket_timeout=1
                )
                self._idle = []
                self._pid = os.getpid()
            return self._client

    def close(self) -> None:
        """Close this process's connections (they are made again if used)."""
        with self._lock:
            idle, self._idle = self._idle, []
            for connection in idle:
                connection.disconnect()  # type: ignore[no-untyped-call, unused-ignore]
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    @contextlib.contextmanager
    def connection(self) -> c.Iterator[redis.Connection]:
        """A connection for one round trip, the caller's alone meanwhile.

        For the round trips on every message: redis-py's pool and pipeline
        wrap each in more work than the round trip itself (a message's
        limits cost 215-330 µs of CPU beyond counting in the process through
        them, 105-130 µs on a kept connection; ``python -m bench --only
        crossing``). Kept between uses, looked at before each (one read that
        finds nothing, or that Redis closed it while idle), and dropped on
        any failure.
        """
        import redis

        client = self.client()
        idle = self._idle
        connection = idle.pop() if idle else client.connection_pool.make_connection()
        try:
            # Nobody asked it anything: whatever is there is not ours.
            fresh = not connection.can_read(timeout=0)
        except redis.ConnectionError:
            fresh = False  # closed while idle (Redis restarted, say)
        if not fresh:
            # Sending connects it again.
            connection.disconnect()  # type: ignore[no-untyped-call, unused-ignore]
        try:
            yield t.cast("redis.Connection", connection)
        except BaseException:
            connection.disconnect()  # type: ignore[no-untyped-call, unused-ignore]
            raise
        if self._idle is idle:  # not a forked process's leftover
            idle.append(t.cast("redis.Connection", connection))


class RedisCounts(RedisClient):
    """Counts in Redis, shared by every process of the shop."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix)
        self._fallback = MemoryCounts()

    def add(self, key: str, window: int) -> int:
        return self.add_all([(key, window)])[0]

    def add_all(self, keys: list[tuple[str, int]]) -> list[int]:
        """Count each (key, window) in one round trip; the counts so far."""
        import redis

        now = time.time()
        commands: list[tuple[object, ...]] = []
        for key, window in keys:
            name = f"{self.prefix}limit:{key}:{int(now // window)}"
            commands += [("INCR", name), ("EXPIRE", name, window + 1)]
        try:
            with self.connection() as connection:
                redis_wire.send(connection, commands)
                answers = [connection.read_response() for _ in commands]
        except redis.RedisError as error:
            log.warning("Redis is away; limits count in this process: %s", error)
            return self._fallback.add_all(keys)
        return [int(count) for count in answers[::2]]


class OpenSockets:
    """How many sockets each client IP holds open in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def enter(self, ip_address: str | None, limit: int) -> bool:
        """Count one more open socket, unless the address holds ``limit``."""
        if ip_address is None or not limit:
            return True
        with self._lock:
            if self._open.get(ip_address, 0) >= limit:
                return False
            self._open[ip_address] = self._open.get(ip_address, 0) + 1
            return True

    def leave(self, ip_address: str | None) -> None:
        if ip_address is None:
            return
        with self._lock:
            left = self._open.get(ip_address, 0) - 1
            if left > 0:
                self._open[ip_address] = left
            else:
                self._open.pop(ip_address, None)

    def beat(self) -> None:
        """This process is alive and holds its sockets (see :class:`SharedSockets`)."""


#: One socket less for a process; its field goes at none. One step in Redis:
#: between a decrement and a delete of two calls, a socket opening in the
#: same process was counted and then deleted with the field.
_LEAVE = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
"""


class SharedSockets(OpenSockets):
    """Open sockets per client IP, in every process of the shop together.

    Each process keeps its own count of an address's sockets in one Redis
    hash per address, and says it is alive with a key that expires: the
    sockets of a process that died (killed, say) stop counting once its key
    expired, without anybody taking them off. While Redis is away, each
    process counts its own.
    """

    #: Seconds a process counts as alive after it last said so.
    ALIVE_SECONDS = 60

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.redis = RedisClient(url, prefix)
        self._beaten = 0.0

    def _holder(self) -> str:
        # The pid, for a process forked from another; the host, for several.
        return f"{socket.gethostname()}:{os.getpid()}"

    def _key(self, ip_address: str) -> str:
        return f"{self.redis.prefix}sockets:{ip_address}"

    def _alive(self, holder: str) -> str:
        return f"{self.redis.prefix}alive:{holder}"

    def enter(self, ip_address: str | None, limit: int) -> bool:
        if not super().enter(ip_address, limit):
            return False
        if ip_address is None or not limit:
            return True
        import redis

        try:
            if self._shared_count(ip_address) > limit:
                self.leave(ip_address)
                return False
        except redis.RedisError as error:
            log.warning("Redis is away; sockets count in this process: %s", error)
        return True

    def _shared_count(self, ip_address: str) -> int:
        """Count this socket in Redis; the address's sockets in live processes."""
        client, key, holder = self.redis.client(), self._key(ip_address), self._holder()
        pipe = client.pipeline()
        pipe.set(self._alive(holder), 1, ex=self.ALIVE_SECONDS)
        pipe.hincrby(key, holder, 1)
        pipe.expire(key, 24 * 3600)
        pipe.hgetall(key)
        *_, counts = pipe.execute()
        others = [name for name in counts if name.decode() != holder]
        pipe = client.pipeline()
        for other in others:
            pipe.exists(self._alive(other.decode()))
        dead = [name for name, up in zip(others, pipe.execute(), strict=True) if not up]
        if dead:
            client.hdel(key, *dead)
        return sum(int(n) for name, n in counts.items() if name not in dead)

    def leave(self, ip_address: str | None) -> None:
        super().leave(ip_address)
        if ip_address is None:
            return
        import redis

        try:
            self.redis.client().eval(_LEAVE, 1, self._key(ip_address), self._holder())
        except redis.RedisError:
            pass  # the process's own count is right; Redis forgets in a day

    def beat(self) -> None:
        # Often enough to stay alive, and at most that often: every socket
        # of the process calls this on each of its ticks.
        if time.monotonic() - self._beaten < self.ALIVE_SECONDS / 3:
            return
        self._beaten = time.monotonic()
        import redis

        try:
            self.redis.client().set(
                self._alive(self._holder()), 1, ex=self.ALIVE_SECONDS
            )
        except redis.RedisError:
            pass


class Limits:
    """``allow(name, who, limit, window)``: whether one more is allowed now."""

    def __init__(self, counts: MemoryCounts | RedisCounts) -> None:
        self.counts = counts

    @staticmethod
    def retry_after(window: int) -> int:
        """Whole seconds until a window of ``window`` seconds starts over."""
        return int(seconds_left(window)) + 1

    def allow(self, name: str, who: object, limit: int, window: int) -> bool:
        """Count one more ``name`` for ``who``; whether it stays within ``limit``.

        A ``who`` of ``None`` (no IP address known, say) is not limited.
        """
        return self.exceeded([Limit(name, who, limit, window)]) is None

    def exceeded(self, limits: list[Limit]) -> Limit | None:
        """Count one more for each of ``limits`` (in one round trip to Redis);
        the first that this goes past."""
        counted = [limit for limit in limits if limit.who is not None and limit.limit]
        counts = self.counts.add_all(
            [(f"{limit.name}:{limit.who}", limit.window) for limit in counted]
        )
        for limit, count in zip(counted, counts, strict=True):
            if count > limit.limit:
                return limit
        return None


class Limit(t.NamedTuple):
    """At most ``limit`` of ``name`` by ``who`` in a window of ``window`` seconds."""

    name: str
    who: object
    limit: int
    window: int
