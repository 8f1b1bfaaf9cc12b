"""A template engine on isolate: templates are compiled and run in a sandboxed context, and
call back into Python (host callables) for data and formatting.

Run from anywhere: python examples/templates/render.py

Shows:
- the compiler (engine.js) and the compiled templates live in one isolate context;
  each template is compiled once to a JS function with its own file name, so a
  failure points at the template line (``pages/receipt.tpl:2:...``);
- Python functions given to the context (``customer``, ``filters.money``,
  ``filters.escape``) are called from the templates like JS functions;
- when a host callable raises, the template sees a JS error (type name and message
  only), and the caller gets a ``JSError`` whose ``__cause__`` is the Python
  exception itself, traceback and all.
"""

from __future__ import annotations

import html
import sys
import traceback
from pathlib import Path

import isolate

HERE = Path(__file__).resolve().parent

# The "database" and the formatting live in Python; the templates reach them only
# through the functions handed to their context.
CUSTOMERS = {"c-1": {"name": "Ada <Lovelace>", "country": "GB"}, "c-2": {"name": "Grace Hopper", "country": "US"}}


def customer(customer_id):
    return CUSTOMERS[customer_id]  # KeyError for an unknown id


def money(cents):
    if not isinstance(cents, int):
        raise TypeError(f"money() takes whole cents, got {type(cents).__name__}")
    return f"${cents // 100:,}.{cents % 100:02d}"


def main() -> int:
    with isolate.Pool(size=1) as pool:
        ctx = pool.create_context({"customer": customer, "filters": {"money": money, "escape": html.escape}})
        pool.run_in_context((HERE / "engine.js").read_text(), ctx, filename="engine.js")
        compile_template = ctx["compileTemplate"]

        templates = {}
        for path in sorted((HERE / "pages").glob("*.tpl")):
            name = f"pages/{path.name}"
            body = compile_template(path.read_text())
            templates[name] = isolate.compile_function(body, ["it"], parsing_context=ctx, filename=name)

        invoice = {"number": 1042, "customer": "c-1", "note": "Thank you!",
                   "lines": [{"item": "Analytical Engine", "qty": 1, "cents": 1250000},
                             {"item": "Punched card", "qty": 300, "cents": 15}]}
        print(templates["pages/invoice.tpl"](invoice, timeout=1000), end="")

        # A receipt for a customer the database does not know: customer() raises KeyError.
        try:
            templates["pages/receipt.tpl"]({"number": 7, "customer": "c-404", "paid": 999}, timeout=1000)
        except isolate.JSError as error:
            print("--- rendering pages/receipt.tpl failed:")
            print(error)                   # the JS error and the template line it came from
            print("--- its JavaScript stack:")
            print(error.stack)             # through the host call: customer (<host>), then the template
            cause = error.__cause__        # the Python exception, with its traceback
            where = traceback.extract_tb(cause.__traceback__)[-1]
            print(f"--- caused by the Python {type(cause).__name__}: {cause} (in {where.name}())")

        # A bad value for a filter: money() raises TypeError, a TypeError in JS too.
        try:
            templates["pages/receipt.tpl"]({"number": 8, "customer": "c-2", "paid": 9.5}, timeout=1000)
        except isolate.JSTypeError as error:
            print("--- and with a bad amount:")
            print(error)
            print(f"--- caused by the Python {type(error.__cause__).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
