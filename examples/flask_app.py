"""Flask with Blazing Flow: views call a ``SyncBlazing`` app, which blocks the request's
thread (never an event loop) until the result is there.

    flask --app flask_app run            # embedded: workers run inside the web process
    curl -X POST 'localhost:5000/quotes/widget?qty=3'

With ``BLAZING_REDIS_URL`` set, start workers as for any app
(``python -m blazing.worker --app flask_app:flow --type async``, and ``--type blocking``)
and ``BLAZING_LOCAL_WORKERS=0`` makes the web process a pure client.
"""

from __future__ import annotations

import atexit

from flask import Flask, abort, jsonify, request

from blazing import SyncBlazing

flow = SyncBlazing()  # started by its first call; threads of the web server share it
atexit.register(flow.stop)  # drain running work when the server exits

PRICES = {"widget": 2.50, "gadget": 10.00}


@flow.step
def fetch_price(sku: str) -> float:
    if sku not in PRICES:
        raise KeyError(f"no price for {sku!r}")
    return PRICES[sku]


@flow.step
def with_tax(amount: float) -> float:
    return round(amount * 1.2, 2)


@flow.workflow
async def quote(sku: str, qty: int) -> dict:
    price = await fetch_price(sku)
    return {"sku": sku, "qty": qty, "total": await with_tax(price * qty)}


app = Flask(__name__)


@app.post("/quotes/<sku>")
def create_quote(sku: str):
    try:
        return jsonify(flow.quote(sku, int(request.args.get("qty", 1))))
    except KeyError as exc:  # the step's own exception, re-raised here
        abort(404, description=str(exc))


@app.get("/health")
def health():
    return jsonify(ok=True)
