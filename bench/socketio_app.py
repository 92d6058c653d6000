"""The Flask-SocketIO baseline: the same relay as bench.relay_server, in Socket.IO.

A customer joins room ``c<chat>``, an operator ``o<n>``; ``msg`` from a
customer goes to its chat's operator room, ``msg`` from an operator to the
chat's customer room. Nothing is stored. Served by gunicorn's gevent worker
as ``bench.socketio_app:app``; ``BENCH_OPERATORS`` is the operator count.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask import request
from flask_socketio import emit
from flask_socketio import join_room
from flask_socketio import SocketIO

OPERATORS = int(os.environ.get("BENCH_OPERATORS", "10"))

app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent")


@socketio.on("connect")
def connect() -> None:
    role = request.args["role"]
    join_room(f"{role}{request.args['n']}")


@socketio.on("msg")
def relay(data: dict[str, t.Any]) -> None:
    chat = data["chat"]
    if request.args["role"] == "c":
        emit("msg", data, to=f"o{chat % OPERATORS}")
    else:
        emit("msg", data, to=f"c{chat}")


@app.get("/health")
def health() -> str:
    return "ok"
