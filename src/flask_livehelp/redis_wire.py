"""Commands written straight onto a redis-py connection its caller holds.

For the round trips of every message and every event: redis-py's pool and
pipeline wrap each in more work than the round trip itself (``python -m
bench --only crossing``). The caller keeps the connection and reads the
answers when it needs them.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

if t.TYPE_CHECKING:
    import redis


Command = tuple[object, ...]


def send(connection: redis.Connection, commands: c.Sequence[Command]) -> None:
    """Write ``commands`` in one write; their answers are left unread."""
    # Untyped in the lock's redis 8.1.
    packed = connection.pack_commands(commands)  # type: ignore[no-untyped-call, unused-ignore]
    connection.send_packed_command(packed, check_health=False)  # type: ignore[no-untyped-call, unused-ignore]
