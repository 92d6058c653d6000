"""gunicorn settings for a shop serving live chat.

``gunicorn -c example_shop/gunicorn.conf.py --worker-class gevent ... wsgi:app``;
docs/deployment.md gives the whole command.
"""

from __future__ import annotations

import gc
import typing as t

if t.TYPE_CHECKING:
    from gunicorn.workers.base import Worker


def post_worker_init(worker: Worker) -> None:
    """Leave what the worker has loaded out of every full collection.

    The modules, the app and its mappers live as long as the worker. A full
    collection walks every object there is, and holds every open chat of
    the worker while it does: with a hundred thousand objects loaded, tens
    of milliseconds each time (see docs/benchmarks.md). Frozen, they are
    left out; what the chats make later is collected as always.
    """
    # Garbage of loading goes first, or it would be kept for good.
    gc.collect()
    gc.freeze()
