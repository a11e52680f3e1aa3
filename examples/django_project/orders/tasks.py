"""The project's Blazing app. ``SyncBlazing`` suits Django views: a call blocks the
request's thread until the result is there.

Embedded by default (workers inside the web process). With ``BLAZING_REDIS_URL`` set,
``python manage.py blazing_worker --type async`` (and ``--type blocking``) runs workers,
and ``BLAZING_LOCAL_WORKERS=0`` makes the web process a pure client.
"""

from blazing import SyncBlazing

flow = SyncBlazing()

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
