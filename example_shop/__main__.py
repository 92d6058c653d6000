"""Run the demo shop: ``python -m example_shop [--host HOST] [--port PORT]``."""

from __future__ import annotations

import argparse

from flask import Flask
from flask import url_for

from . import create_app
from .seed import create_demo_operator
from .seed import DEMO_CUSTOMER
from .seed import DEMO_OPERATOR
from .seed import seed


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    app = create_app()
    seed(app)
    create_demo_operator(app)
    print(_banner(app, args.host, args.port), flush=True)
    # Threaded, because every open chat WebSocket holds on to one thread.
    app.run(args.host, args.port, threaded=True, use_reloader=False)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m example_shop", description="Run the Nordlys Butik demo shop."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    return parser.parse_args(argv)


def _banner(app: Flask, host: str, port: int) -> str:
    # Build the URLs with the app's own routing, so a changed prefix shows here too.
    with app.test_request_context(base_url=f"http://{host}:{port}/"):
        shop = url_for("shop.index", _external=True)
        panel = url_for("livehelp.panel.index", _external=True)
    operator = f"{DEMO_OPERATOR['email']} / {DEMO_OPERATOR['password']}"
    customer = f"{DEMO_CUSTOMER['email']} / {DEMO_CUSTOMER['password']}"
    return "\n".join(
        [
            "Nordlys Butik is running.",
            f"  Shop:            {shop}",
            f"  Operator panel:  {panel}",
            f"  Demo operator:   {operator}",
            f"  Demo customer:   {customer}",
        ]
    )


if __name__ == "__main__":
    main()
