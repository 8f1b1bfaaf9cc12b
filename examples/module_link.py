"""Spec: vm.Module — construct, link, evaluate (examples/node/module_link.js).

The spec's three steps: a SourceTextModule importing 'foo', a linker that makes the 'foo'
module (it exports the context's `secret`), and evaluation, which prints 42.
Run: python examples/module_link.py
"""

import isolate
from _nodeprint import log

contextified_object = isolate.create_context({
    "secret": 42,
    "print": log,
})

# Step 1: construct (parses the source; a SyntaxError would raise here).
bar = isolate.SourceTextModule("""
    import s from 'foo';
    s;
    print(s);
""", context=contextified_object)
log(bar.status, list(bar.dependency_specifiers))


# Step 2: link. The linker returns a module for each import (an awaitable of one works too).
def linker(specifier, referencing_module, extra):
    if specifier == "foo":
        return isolate.SourceTextModule("""
        // The "secret" variable refers to the global variable we added to
        // "contextifiedObject" when creating the context.
        export default secret;
      """, context=referencing_module.context)
    raise Exception(f"Unable to resolve dependency: {specifier}")


bar.link(linker).result()  # an isolate.Future: `await bar.link(linker)` in async code
log(bar.status)

# Step 3: evaluate. Prints 42.
bar.evaluate().result()
log(bar.status)
