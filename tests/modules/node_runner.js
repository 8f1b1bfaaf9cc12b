#!/usr/bin/env node
// Runs the ES module cases (module_cases.py, as JSON on stdin or in the file named
// by argv[2]) through node:vm's SourceTextModule / SyntheticModule and prints,
// as one JSON object keyed by case id, a description of what happened.
//
//   python tests/modules/module_cases.py | node --experimental-vm-modules tests/modules/node_runner.js
//
// module_runner.py is the Python twin (same case semantics, same shape of
// description); keep the two in step. The format of a case is documented at
// the top of module_cases.py.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');

const FIXTURES = path.join(__dirname, 'fixtures');
const CASE_TIMEOUT_MS = 10000;
let STACKS = false; // the running case compares stack locations

// ---- describe: a JS value -> tagged JSON (describe.py has the twin) --------
function isPlain(v) {
  const proto = Object.getPrototypeOf(v);
  if (proto === null) return true;
  const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor');
  return !!(ctor && typeof ctor.value === 'function' && ctor.value.name === 'Object' &&
            Object.getPrototypeOf(proto) === null);
}

function describe(v) {
  switch (typeof v) {
    case 'undefined': return { t: 'undefined' };
    case 'boolean': return { t: 'boolean', v };
    case 'number':
      if (Number.isNaN(v)) return { t: 'number', v: 'NaN' };
      if (!Number.isFinite(v)) return { t: 'number', v: v > 0 ? 'Infinity' : '-Infinity' };
      if (v === 0 && 1 / v < 0) return { t: 'number', v: '-0' };
      return { t: 'number', v };
    case 'bigint': return { t: 'bigint', v: String(v) };
    case 'string': return { t: 'string', v };
    case 'symbol': return { t: 'symbol', description: v.description === undefined ? null : v.description };
    case 'function': return { t: 'function' };
    default: break;
  }
  if (v === null) return { t: 'null' };
  if (util.types.isModuleNamespaceObject(v)) return { t: 'instance' };
  if (Array.isArray(v)) return { t: 'array', v: Array.from(v, describe) };
  if (util.types.isNativeError(v) || v instanceof Error) return describeError(v);
  if (util.types.isArrayBuffer(v) || ArrayBuffer.isView(v)) return { t: 'bytes' };
  if (util.types.isPromise(v)) return { t: 'promise' };
  if (isPlain(v)) return { t: 'object', v: Object.keys(v).map((k) => [k, describe(v[k])]) };
  return { t: 'instance' };
}

function describeError(e) {
  const out = { t: 'error', name: String(e.name), message: String(e.message) };
  if (typeof e.code === 'string') out.code = e.code;
  if (Object.prototype.hasOwnProperty.call(e, 'cause') && e.cause !== undefined) out.cause = describeThrown(e.cause);
  if (STACKS && typeof e.stack === 'string') out.at = stackLocation(e.stack);
  return out;
}

// "file:line" of the first stack frame (columns differ between engines).
function stackLocation(stack) {
  const m = /^\s*at (?:[^\n(]*\()?([^\s()]+):(\d+):\d+\)?$/m.exec(stack);
  return m ? `${m[1]}:${m[2]}` : null;
}

// What a throw (or a rejection) looks like: an Error by its fields, anything else by value.
function describeThrown(e) {
  if (e !== null && typeof e === 'object' && (util.types.isNativeError(e) || e instanceof Error)) return describeError(e);
  return { t: 'throw', v: describe(e) };
}

// A value a step has already described (a namespace: read binding by binding).
class Described {
  constructor(desc) { this.desc = desc; }
}

async function outcome(fn) {
  try {
    const v = await fn();
    return { ok: v instanceof Described ? v.desc : describe(v) };
  } catch (e) {
    return { err: describeThrown(e) };
  }
}

// ---- one case --------------------------------------------------------------
// `{"$raw": x}` in an option is passed as x itself (bad inputs); `{"$slot": s}`
// is a value kept by an earlier step; "$fixture:name" is a path under fixtures/.
class Run {
  constructor(c) {
    this.c = c;
    this.contexts = {};
    this.modules = {};
    this.names = new Map();
    this.slots = {};
    this.hlog = [];
    this.linkerCalls = [];
    this.dynamicCalls = [];
    this.construct = {};
    this.defaultContext = c.context || 'ctx';
  }

  hostLog() { return (x) => { this.hlog.push(x); }; }

  setup() {
    vm.runInThisContext('globalThis.log = []');
    globalThis.hlog = this.hostLog();
    const specs = { ctx: {}, ...(this.c.contexts || {}) };
    for (const [name, spec] of Object.entries(specs)) {
      this.contexts[name] = vm.createContext({ log: [], hlog: this.hostLog(), ...(spec.globals || {}) });
    }
    for (const [name, spec] of Object.entries(this.c.modules || {})) {
      if (typeof spec === 'object' && spec !== null && spec.lazy) continue;
      try {
        this.create(name);
      } catch (e) {
        this.construct[name] = describeThrown(e);
      }
    }
  }

  contextOf(name) {
    return name === 'main' ? undefined : this.contexts[name];
  }

  value(spec) {
    if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
      if ('$raw' in spec) return spec.$raw;
      if ('$slot' in spec) return this.slots[spec.$slot];
    }
    if (typeof spec === 'string' && spec.startsWith('$fixture:')) return path.join(FIXTURES, spec.slice(9));
    return spec;
  }

  moduleSpec(name) {
    const spec = this.c.modules[name];
    return typeof spec === 'string' ? { source: spec } : spec;
  }

  create(name) {
    const spec = this.moduleSpec(name);
    const opts = {};
    if (spec.context !== null && typeof spec.context === 'object') {
      opts.context = this.value(spec.context);
    } else {
      const ctxName = spec.context === undefined ? this.defaultContext : spec.context;
      if (ctxName !== 'main') opts.context = this.contexts[ctxName];
    }
    if (spec.identifier !== undefined) opts.identifier = this.value(spec.identifier);
    let mod;
    if (spec.synthetic !== undefined) {
      const actions = spec.evaluate || [];
      const run = this;
      const callback = spec.callback !== undefined ? this.value(spec.callback) : function () {
        for (const [op, a, b] of actions) {
          if (op === 'set') mod.setExport(a, b);
          else if (op === 'hlog') run.hlog.push(a);
          else if (op === 'throw') throw new Error(a);
          else throw new Error('unknown synthetic action ' + op);
        }
      };
      mod = new vm.SyntheticModule(this.value(spec.synthetic), callback, opts);
    } else {
      for (const key of ['lineOffset', 'columnOffset', 'cachedData']) {
        if (spec[key] !== undefined) opts[key] = this.value(spec[key]);
      }
      if (spec.initializeImportMeta !== undefined) opts.initializeImportMeta = this.importMeta(spec.initializeImportMeta, () => mod);
      if (spec.importModuleDynamically !== undefined) {
        opts.importModuleDynamically = this.dynamic(spec.importModuleDynamically, () => mod);
      }
      mod = new vm.SourceTextModule(this.value(spec.source), opts);
    }
    this.modules[name] = mod;
    this.names.set(mod, name);
    return mod;
  }

  nameOf(mod) {
    return this.names.has(mod) ? this.names.get(mod) : '<not a case module>';
  }

  importMeta(spec, self) {
    if (spec !== null && typeof spec === 'object' && '$raw' in spec) return spec.$raw;
    return (meta, module) => {
      this.hlog.push(['import.meta', this.nameOf(module), module === self()]);
      if (spec.throw !== undefined) throw new Error(spec.throw);
      for (const [k, v] of Object.entries(spec.set || {})) meta[k] = v;
    };
  }

  // importModuleDynamically: "default_loader", {"$raw": x}, or
  // {"map": true | {specifier: module}, "namespace": bool, "return": value, "throw": message}.
  dynamic(spec, self) {
    if (spec === 'default_loader') return vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
    if (spec !== null && typeof spec === 'object' && '$raw' in spec) return spec.$raw;
    const callback = (specifier, referrer, attributes) => {
      this.dynamicCalls.push([specifier, referrer === self() ? 'self' : 'other', describe({ ...attributes })]);
      if (spec.throw !== undefined) throw new Error(spec.throw);
      if ('return' in spec) return this.value(spec.return);
      const map = typeof spec.map === 'object' ? spec.map : {};
      const mod = this.modules[map[specifier] || specifier];
      return spec.namespace ? mod.namespace : mod;
    };
    if (spec.async) return async (...args) => { await null; return callback(...args); };
    return callback;
  }

  // linker: absent or {"map": {specifier: module}} (modules by name), {"throw": m},
  // {"return": value}, {"async": true}, {"$raw": x} (not a function).
  linker(spec = {}) {
    if (spec !== null && typeof spec === 'object' && '$raw' in spec) return spec.$raw;
    const resolve = (specifier, referencing, extra) => {
      this.linkerCalls.push([specifier, this.nameOf(referencing), describe({ ...extra.attributes })]);
      if (spec.throw !== undefined) throw new Error(spec.throw);
      if ('return' in spec) return this.value(spec.return);
      const name = (spec.map && spec.map[specifier]) || specifier;
      if (!(name in this.modules) && this.c.modules[name] !== undefined) this.create(name);
      return this.modules[name];
    };
    if (spec.async) return async (...args) => { await null; return resolve(...args); };
    return resolve;
  }

  contextFor(step) {
    return this.contextOf(step.context || this.defaultContext);
  }

  runCode(code, ctxName) {
    const ctx = this.contextOf(ctxName || this.defaultContext);
    return ctx === undefined ? vm.runInThisContext(code) : vm.runInContext(code, ctx);
  }

  async step(op, args) {
    const m = () => this.modules[args[0]];
    switch (op) {
      case 'new': return outcome(() => { this.create(args[0]); });
      case 'status': return outcome(() => m().status);
      case 'identifier': return outcome(() => m().identifier);
      case 'error': return outcome(() => m().error);
      case 'dependency_specifiers': return outcome(() => [...m().dependencySpecifiers]);
      case 'context_is': return outcome(() => m().context === this.contextOf(args[1]));
      case 'namespace': return outcome(() => describeNamespace(m().namespace));
      case 'ns_get': return outcome(() => m().namespace[args[1]]);
      case 'ns_call': return outcome(() => m().namespace[args[1]](...args.slice(2)));
      case 'ns_set': return outcome(() => { m().namespace[args[1]] = args[2]; });
      case 'ns_has': return outcome(() => args[1] in m().namespace);
      case 'set_export': return outcome(() => { m().setExport(this.value(args[1]), this.value(args[2])); });
      case 'link': return outcome(async () => { await m().link(this.linker(args[1])); });
      case 'evaluate': return outcome(async () => {
        const r = await (args[1] === undefined ? m().evaluate() : m().evaluate(args[1]));
        if (r !== undefined) throw new Error('evaluate resolved to a value');
      });
      case 'link_start': return this.start(args[1], () => m().link(this.linker(args[2])));
      case 'evaluate_start': return this.start(args[1], () => m().evaluate());
      case 'await': return outcome(async () => {
        const r = await this.slots[args[0]];
        if (r !== undefined) throw new Error('resolved to a value');
      });
      case 'evaluate_twice': return this.evaluateTwice(m());
      case 'link_during_link': {
        // All in one synchronous stretch (no microtask runs in between): Node's answers
        // to a second link() depend on how far the first one got.
        const linker = this.linker(args[1]);
        const first = m().link(linker);
        first.catch(() => {});
        const status = m().status;
        let namespace;
        try { m().namespace; namespace = { ok: { t: 'available' } }; } catch (e) { namespace = { err: describeThrown(e) }; }
        let second;
        try { second = m().link(linker); second.catch(() => {}); } catch (e) { second = Promise.reject(e); second.catch(() => {}); }
        return { during: { status, namespace, second: await outcome(() => second), first: await outcome(() => first) } };
      }
      case 'cached_data': return outcome(() => {
        this.slots[args[1]] = m().createCachedData();
        return this.slots[args[1]];
      });
      case 'eval': return outcome(() => this.runCode(args[0], args[1]));
      case 'settle': return outcome(async () => await this.runCode(args[0], args[1]));
      case 'script': return outcome(async () => {
        const spec = args[0];
        const opts = {};
        let script;
        if (spec.filename !== undefined) opts.filename = this.value(spec.filename);
        if (spec.importModuleDynamically !== undefined) opts.importModuleDynamically = this.dynamic(spec.importModuleDynamically, () => script);
        script = new vm.Script(spec.code, opts);
        const ctx = this.contextFor(spec);
        return await (ctx === undefined ? script.runInThisContext() : script.runInContext(ctx));
      });
      case 'run_in_context': return outcome(async () => {
        const spec = args[0];
        const opts = {};
        if (spec.filename !== undefined) opts.filename = this.value(spec.filename);
        if (spec.importModuleDynamically !== undefined) opts.importModuleDynamically = this.dynamic(spec.importModuleDynamically, () => undefined);
        return await vm.runInContext(spec.code, this.contextFor(spec), opts);
      });
      case 'compile_function': return outcome(async () => {
        const spec = args[0];
        const opts = {};
        let fn;
        if (spec.filename !== undefined) opts.filename = this.value(spec.filename);
        const ctx = this.contextFor(spec);
        if (ctx !== undefined) opts.parsingContext = ctx;
        if (spec.importModuleDynamically !== undefined) opts.importModuleDynamically = this.dynamic(spec.importModuleDynamically, () => fn);
        fn = vm.compileFunction(spec.code, [], opts);
        return await fn();
      });
      default: throw new Error(`case ${this.c.id}: unknown step ${op}`);
    }
  }

  start(slot, fn) {
    try {
      const p = fn();
      p.catch(() => {});
      this.slots[slot] = p;
      return { ok: { t: 'started' } };
    } catch (e) {
      this.slots[slot] = Promise.reject(e);
      this.slots[slot].catch(() => {});
      return { err: describeThrown(e) };
    }
  }

  // evaluate() twice in a row: both outcomes, and for two rejections whether
  // they are the same error (and the module's .error).
  async evaluateTwice(mod) {
    const errors = [];
    const results = [];
    for (let i = 0; i < 2; i++) {
      try {
        const r = await mod.evaluate();
        results.push(r === undefined ? { ok: { t: 'undefined' } } : { ok: describe(r) });
      } catch (e) {
        errors.push(e);
        results.push({ err: describeThrown(e) });
      }
    }
    const out = { first: results[0], second: results[1] };
    if (errors.length === 2) out.same = errors[0] === errors[1] && errors[0] === mod.error;
    return { twice: out };
  }

  async run() {
    this.setup();
    const steps = [];
    for (const [op, ...args] of this.c.steps || []) steps.push([op, await this.step(op, args)]);
    const out = { steps };
    if (Object.keys(this.construct).length) out.construct = this.construct;
    const logCtx = this.contextOf(this.defaultContext);
    out.log = describe(logCtx === undefined ? globalThis.log : vm.runInContext('log', logCtx));
    if (this.hlog.length) out.hlog = describe(this.hlog);
    if (this.linkerCalls.length) out.linker_calls = this.linkerCalls;
    if (this.dynamicCalls.length) out.dynamic_calls = this.dynamicCalls;
    delete globalThis.log;
    delete globalThis.hlog;
    return out;
  }
}

// A namespace as [name, value-or-throw] pairs, in the namespace's own key order
// (its string keys; reading a binding in its TDZ throws, so each read is separate).
function describeNamespace(ns) {
  const entries = [];
  for (const k of Reflect.ownKeys(ns)) {
    if (typeof k !== 'string') continue;
    try {
      entries.push([k, describe(ns[k])]);
    } catch (e) {
      entries.push([k, { t: 'throws', error: describeThrown(e) }]);
    }
  }
  return new Described({ t: 'namespace', v: entries });
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ timeout: `case did not finish within ${ms} ms` }), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const input = process.argv[2] ? fs.readFileSync(process.argv[2], 'utf8') : fs.readFileSync(0, 'utf8');
  const { cases } = JSON.parse(input);
  // A rejection nobody handles must not end the run; the cases handle theirs.
  process.on('unhandledRejection', () => {});
  const results = {};
  for (const c of cases) {
    STACKS = [].concat(c.compare || []).includes('stack');
    try {
      results[c.id] = await withTimeout(new Run(c).run(), CASE_TIMEOUT_MS);
    } catch (e) {
      results[c.id] = { runner_error: String(e && e.stack) };
    }
  }
  process.stdout.write(JSON.stringify({ node: process.version, results }) + '\n');
}

main();
