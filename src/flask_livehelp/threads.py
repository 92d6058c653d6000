"""System threads where gevent patched them away: work that must hold up no
request, and the unpatched originals of what gevent replaced.

Under gevent's monkey patching every request of a worker shares one system
thread, so a long C call (a checkpoint, a disk sync) or a long stretch of
Python (compiling a large statement) stops every chat in the worker while it
runs. Elsewhere each request has a thread of its own and nothing is needed.
"""

from __future__ import annotations

import importlib
import sys
import typing as t

_T = t.TypeVar("_T")


def gevent_patched(module: str) -> bool:
    """Whether gevent's monkey patching replaced ``module`` in this process."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched(module))


def unpatched(module: str, name: str) -> t.Any:
    """``module.name`` as the system has it, also where gevent patched it."""
    if gevent_patched(module):
        return sys.modules["gevent.monkey"].get_original(module, name)
    return getattr(importlib.import_module(module), name)


def off_the_event_loop(function: t.Callable[..., _T], *args: object) -> _T:
    """``function(*args)`` where it holds up no other request; the caller waits.

    Under gevent it runs in gevent's pool of system threads. C calls there
    run beside the requests; Python there still shares the interpreter, but
    hands it back to the requests every few milliseconds (the interpreter's
    switch interval), instead of keeping it until done.
    """
    if gevent_patched("threading"):
        hub = sys.modules["gevent"].get_hub()
        return t.cast(_T, hub.threadpool.apply(function, args))
    return function(*args)


def let_requests_run() -> None:
    """Under gevent, let the requests that became ready meanwhile run before
    going on, so work done in pieces holds them up one piece at a time.
    Elsewhere each request has a thread of its own: this returns at once."""
    if gevent_patched("threading"):
        # Any time above none: gevent looks at the sockets before it comes
        # back, which after none it may not.
        sys.modules["gevent"].sleep(0.0001)
