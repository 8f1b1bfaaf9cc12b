#!/usr/bin/env python3
"""Generate a day of e-commerce orders as `isolate batch` jobs (JSON lines on stdout).

Each line is a job for ``--script transform.js``: ``{"id": "ORD-...",
"context": {"order": {...}}}``. The data is deterministic for a given
``--seed``, and about 1% of the orders are broken the way real feeds are
broken (a negative quantity, an unknown currency), so the transform rejects
them and the batch records an error for each.

    python examples/batch/make_dataset.py --count 5000 > /tmp/orders.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys

CATALOG = [
    # sku, category, unit price (EUR), weight (kg)
    ("BK-1001", "books", 12.99, 0.4), ("BK-1002", "books", 24.50, 0.9),
    ("BK-1003", "books", 8.75, 0.3), ("EL-2001", "electronics", 59.00, 0.3),
    ("EL-2002", "electronics", 349.00, 2.1), ("EL-2003", "electronics", 1299.00, 2.8),
    ("EL-2004", "electronics", 19.99, 0.1), ("HM-3001", "home", 34.90, 1.6),
    ("HM-3002", "home", 89.00, 7.5), ("HM-3003", "home", 4.99, 0.2),
    ("TY-4001", "toys", 27.00, 0.8), ("TY-4002", "toys", 64.99, 2.4),
    ("GR-5001", "grocery", 3.49, 1.0), ("GR-5002", "grocery", 11.20, 0.5),
    ("AP-6001", "apparel", 45.00, 0.6), ("AP-6002", "apparel", 120.00, 1.1),
]
COUNTRIES = [("DE", 30), ("FR", 20), ("NL", 10), ("IT", 12), ("ES", 10), ("BE", 6), ("AT", 5),
             ("PL", 4), ("SE", 3)]
COUPONS = [None] * 12 + ["WELCOME10", "SPRING15", "FREESHIP", "VIP20", "EXPIRED5"]
SHIPPING = [("standard", 70), ("express", 25), ("pickup", 5)]
PAYMENT = [("card", 60), ("paypal", 25), ("invoice", 10), ("giftcard", 5)]


def weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights)[0]


def make_order(rng: random.Random, n: int, day: dt.datetime) -> dict:
    customer = f"C{rng.randint(1, 1500):05d}"
    lines = []
    for sku, category, price, weight in rng.sample(CATALOG, k=rng.choice([1, 1, 1, 2, 2, 3, 4])):
        lines.append({"sku": sku, "category": category, "unit_price": price, "weight_kg": weight,
                      "qty": rng.choice([1, 1, 1, 1, 2, 2, 3, 5])})
    order = {
        "order_id": f"ORD-{day:%Y%m%d}-{n:06d}",
        "customer_id": customer,
        "created_at": (day + dt.timedelta(seconds=rng.randint(0, 86399))).isoformat() + "Z",
        "country": weighted(rng, COUNTRIES),
        "currency": "EUR",
        "coupon": rng.choice(COUPONS),
        "shipping": weighted(rng, SHIPPING),
        "payment": weighted(rng, PAYMENT),
        "first_order": rng.random() < 0.15,
        "billing_matches_shipping": rng.random() > 0.07,
        "lines": lines,
    }
    # Defects of a real feed, about 1% of the orders.
    defect = rng.random()
    if defect < 0.005:
        order["lines"][0]["qty"] = -order["lines"][0]["qty"]
    elif defect < 0.01:
        order["currency"] = rng.choice(["USD", "EURO", ""])
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="orders to generate (default 5000)")
    parser.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    day = dt.datetime(2024, 11, 29)  # a busy Friday
    out = sys.stdout
    for n in range(1, args.count + 1):
        order = make_order(rng, n, day)
        out.write(json.dumps({"id": order["order_id"], "context": {"order": order}}) + "\n")


if __name__ == "__main__":
    main()
