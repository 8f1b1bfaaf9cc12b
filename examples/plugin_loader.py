"""A small plugin loader with modules whose sources come from a Python dict
(examples/node/plugin_loader.js is its Node twin; not in the spec).

Plugins import helpers statically and load others with import(); every specifier resolves
against the dict, relative to the importing module, once per context.
Run: python examples/plugin_loader.py
"""

import posixpath

import isolate
from _nodeprint import log

SOURCES = {
    "lib/strings.js": """
    export const shout = (s) => s.toUpperCase() + '!';
    export const loaded = [];""",
    "plugins/greet.js": """
    import { shout, loaded } from '../lib/strings.js';
    loaded.push('greet');
    export default function greet(name) { return shout('hello ' + name); }""",
    "plugins/count.js": """
    import { loaded } from '../lib/strings.js';
    loaded.push('count');
    export default async function count(words) {
      const { shout } = await import('../lib/strings.js');
      return shout(words.split(' ').length + ' words');
    }""",
}


class PluginLoader:
    def __init__(self):
        self.context = isolate.create_context({})
        self.modules: dict[str, isolate.SourceTextModule] = {}

    def resolve(self, specifier: str, referrer: str) -> str:
        key = posixpath.normpath(posixpath.join(posixpath.dirname(referrer), specifier))
        if key not in SOURCES:
            raise Exception(f"no module {specifier} from {referrer}")
        return key

    def module(self, key: str) -> isolate.SourceTextModule:
        if key not in self.modules:
            self.modules[key] = isolate.SourceTextModule(
                SOURCES[key], identifier=key, context=self.context,
                import_module_dynamically=lambda specifier, referrer, attributes:
                    self.load(self.resolve(specifier, referrer.identifier)))
        return self.modules[key]

    def load(self, key: str) -> isolate.SourceTextModule:
        m = self.module(key)
        if m.status == "unlinked":
            m.link(lambda specifier, referencing, extra:
                   self.module(self.resolve(specifier, referencing.identifier))).result()
        if m.status == "linked":
            m.evaluate().result()
        return m


loader = PluginLoader()
greet = loader.load("plugins/greet.js")
log(greet.namespace.default("world"))
count = loader.load("plugins/count.js")
log(count.namespace.default("one two three").result())
log(loader.module("lib/strings.js").namespace.loaded, list(loader.modules))
