"""Quickstart: a first job with isolate.

Run it from the repository root::

    python examples/quickstart.py

Every context lives in a QuickJS worker process; this script never sees one.
The same program written for Node's ``vm`` module is examples/node/quickstart.js,
and it prints the same lines.
"""

import isolate

# 1. Compile once, run over many sandboxes. Each dict becomes the globals of a
#    new context; after the run the dict mirrors the context's globals.
script = isolate.Script("total = price * qty; `${qty} x ${item} = ${total}`", filename="order.js")
orders = [
    {"item": "apple", "price": 50, "qty": 4},
    {"item": "pear", "price": 75, "qty": 2},
    {"item": "melon", "price": 300, "qty": 1},
]
for order in orders:
    print(script.run_in_new_context(order))  # the script's completion value
print("grand total:", sum(order["total"] for order in orders))  # `total` was set by JS


# 2. A long-lived context: JS calls Python, Python calls JS.
def currency(cents):
    return f"{cents / 100:.2f} EUR"


shop = isolate.create_context({"taxRate": 0.2, "currency": currency})
isolate.run_in_context("""
function withTax(cents) {
  return Math.round(cents * (1 + taxRate));
}
function invoice(cents) {
  return 'due: ' + currency(withTax(cents));  // currency() is the Python function
}
""", shop)
invoice = shop["invoice"]  # an isolate.JSFunction
print(invoice(650))

# 3. Runaway code is stopped by a timeout (milliseconds), and the pool carries on.
try:
    isolate.run_in_new_context("while (true) {}", timeout=100)
except isolate.ScriptTimeoutError as err:
    print(f"{err.code}: {err}")
print("still working:", isolate.run_in_new_context("6 * 7"))
