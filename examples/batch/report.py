#!/usr/bin/env python3
"""Summarize the records `isolate batch` wrote for the orders dataset.

    python examples/batch/report.py /tmp/orders.out.jsonl

Reads the results file line by line and prints revenue per country and
category, the orders flagged for review, and the rejected orders.
"""

from __future__ import annotations

import collections
import json
import re
import sys


def euros(cents: int) -> str:
    return f"{cents / 100:,.2f} EUR"


def main(path: str) -> None:
    statuses = collections.Counter()
    revenue = collections.Counter()
    by_category = collections.Counter()
    orders = collections.Counter()
    flagged = []
    rejected = collections.Counter()
    total = discount = vat = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            statuses[record["status"]] += 1
            if record["status"] != "ok":
                error = record.get("error") or {}
                reason = re.sub(r"[A-Z]{2}-\d{4}", "a line", error.get("message", "").split(": ", 1)[-1])
                rejected[f'{error.get("name", record["status"])}: {reason}'] += 1
                continue
            order = record["value"]
            revenue[order["country"]] += order["total_cents"]
            orders[order["country"]] += 1
            by_category.update(order["revenue_by_category"])
            total += order["total_cents"]
            discount += order["discount_cents"]
            vat += order["vat_cents"]
            if order["risk"]["score"] >= 60:
                flagged.append(order)

    print(f"orders: {sum(statuses.values())}  " + "  ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
    print(f"revenue: {euros(total)} (VAT {euros(vat)}, discounts {euros(discount)})")
    print("revenue by country:")
    for country, cents in revenue.most_common():
        print(f"  {country}  {euros(cents):>16}  {orders[country]:5d} orders")
    print("revenue by category (before discounts):")
    for category, cents in by_category.most_common():
        print(f"  {category:<12} {euros(cents):>16}")
    print(f"flagged for review (risk >= 60): {len(flagged)}")
    for order in sorted(flagged, key=lambda o: -o["risk"]["score"])[:5]:
        print(f"  {order['order_id']}  score {order['risk']['score']:3d}  {euros(order['total_cents']):>12}  "
              + "; ".join(order["risk"]["reasons"]))
    print(f"rejected: {sum(rejected.values())}")
    for reason, n in rejected.most_common(5):
        print(f"  {n:4d} × {reason}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS.jsonl")
    main(sys.argv[1])
