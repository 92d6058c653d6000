"""Real servers for tests and benchmarks: redis-server and gunicorn processes.

Each runs as a child process on a free port of 127.0.0.1 and is stopped by
the code that started it. The benchmarks import this module too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
import weakref
from pathlib import Path

import redis

VENV_BIN = Path(sys.executable).parent
#: The gunicorn settings docs/deployment.md tells a shop to run with.
GUNICORN_SETTINGS = Path(__file__).parent.parent / "example_shop" / "gunicorn.conf.py"
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return t.cast(int, s.getsockname()[1])


def wait_until(check: t.Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.02)


class RedisServer:
    """A redis-server of our own, which can be stopped and started again."""

    def __init__(self, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = tempfile.mkdtemp(prefix="livehelp-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                t.cast(str, REDIS_SERVER),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: _answers(client), 10, "redis-server answering PING")
        client.close()
        return self

    def stop(self, crash: bool = False) -> None:
        """Shut down, or with ``crash`` die at once (what it had yet to read
        from a connection is then reset, not answered)."""
        if self.process is not None:
            if crash:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Gunicorn:
    """A gunicorn master serving ``app`` (``module:variable``) on a free port.

    :param health: A path that answers 200 once a worker serves the app.
    :param tls: A file holding a certificate and its key: gunicorn itself
        speaks TLS with it.
    """

    def __init__(
        self,
        app: str,
        *,
        workers: int = 1,
        worker_class: str = "gevent",
        worker_connections: int = 1000,
        threads: int = 1,
        env: dict[str, str] | None = None,
        chdir: str | Path | None = None,
        health: str = "/livehelp/widget/status",
        extra: t.Sequence[str] = (),
        log_path: Path | None = None,
        tls: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"{'http' if tls is None else 'https'}://127.0.0.1:{self.port}"
        self.health = health
        #: What a client trusts gunicorn's certificate with, under TLS.
        self.trusting = None if tls is None else ssl.create_default_context(cafile=tls)
        if tls is not None:
            certificate = str(tls.resolve())
            extra = [*extra, "--certfile", certificate, "--keyfile", certificate]
        command = [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--graceful-timeout",
            "3",
            # Several masters on one machine would share its default path.
            "--no-control-socket",
            *extra,
        ]
        if worker_class == "gevent":
            command += ["--worker-connections", str(worker_connections)]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        if chdir is not None:
            command += ["--chdir", str(chdir)]
        command.append(app)
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
            os.close(handle)
            log_path = Path(name)
            # Read after stop() (no_tracebacks), so gone with the server.
            weakref.finalize(self, log_path.unlink, True)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ws_url(self, path: str) -> str:
        return self.url.replace("http", "ws", 1) + path

    def wait_ready(self, timeout: float = 30) -> Gunicorn:
        # gunicorn binds before a worker has loaded the app: ask the app.
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    self.url + self.health, timeout=2, context=self.trusting
                ) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False

        wait_until(ready, timeout, f"gunicorn serving {self.health}")
        return self

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
