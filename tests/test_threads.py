"""Work off the event loop: under gevent every request of a worker shares
one system thread, so what runs long runs in gevent's pool of system
threads, and the other greenlets go on meanwhile."""

from __future__ import annotations

import select
import textwrap

import pytest

from conftest import printed_by
from flask_livehelp.threads import gevent_patched
from flask_livehelp.threads import unpatched

#: A greenlet that counts while the call under test runs.
TICKER = """
from gevent import monkey
monkey.patch_all()
import gevent
from flask_livehelp.threads import off_the_event_loop

ticks = []

def tick():
    while True:
        gevent.sleep(0.01)
        ticks.append(1)

ticker = gevent.spawn(tick)
gevent.sleep(0)
"""


def ticks_during(call: str) -> int:
    """How often a greenlet ticked (every 10 ms) during ``call``, in a
    gevent-patched process."""
    return int(printed_by(TICKER + textwrap.dedent(call) + "\nprint(len(ticks))\n"))


def test_a_c_call_off_the_event_loop_holds_up_no_other_request() -> None:
    """A C call that holds its thread, as a checkpoint's copying and disk
    sync do."""
    ticks = ticks_during(
        """
        hold = monkey.get_original("time", "sleep")
        off_the_event_loop(hold, 0.5)
        """
    )
    # About 50; none if the call held the worker's thread.
    assert ticks >= 10, ticks


def test_python_off_the_event_loop_lets_the_requests_go_on() -> None:
    """Python that works for long, as compiling a large statement does,
    hands the interpreter back every few milliseconds."""
    ticks = ticks_during(
        """
        import time

        def work(seconds):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                sum(range(1000))

        off_the_event_loop(work, 0.5)
        """
    )
    # About 50 less the interpreter's share; none on the worker's thread.
    assert ticks >= 10, ticks


@pytest.mark.parametrize("patched", [False, True])
def test_the_unpatched_poll_is_the_systems(patched: bool) -> None:
    if not patched:
        assert not gevent_patched("select")
        assert unpatched("select", "poll") is select.poll
        return
    script = textwrap.dedent(
        """
        import select
        system_poll = select.poll
        from gevent import monkey
        monkey.patch_all()
        import select
        from flask_livehelp.threads import gevent_patched, unpatched
        print(gevent_patched("select"), select.poll is system_poll,
              unpatched("select", "poll") is system_poll)
        """
    )
    assert printed_by(script).split() == ["True", "False", "True"]
