"""What the opening of every socket goes through, before flask-sock accepts it."""

from __future__ import annotations

from flask import request

from ..auth import check_origin
from ..sockets.reader import READS_INLINE


def check_handshake() -> None:
    """Refuse a foreign origin; accept the socket without compression, and
    without a reader thread (:mod:`..sockets.reader`).

    Browsers ask for permessage-deflate, and simple-websocket grants it with
    full 32 KB windows: a zlib compressor and decompressor that cost each open
    chat over 100 KB of memory, to shrink frames of a few hundred bytes by
    little. Without the header, the socket is accepted plain.
    """
    check_origin()
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    request.environ[READS_INLINE] = True
