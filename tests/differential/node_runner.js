#!/usr/bin/env node
// Runs every case of cases.json through node:vm and prints, as one JSON
// object keyed by case id, a canonical description of what happened.
//
//   node node_runner.js [cases.json]
//
// The Python twin of this file is isolate_runner.py (same case semantics) and
// describe.py (same `describe`). Keep the three in step.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');

// ---- describe: a JS value -> tagged JSON ---------------------------------
// Containers (arrays, plain objects, Maps, Sets) are numbered in pre-order; a
// container met again is {"t":"ref","id":n}, or {"t":"cycle"} when it is one
// of its own ancestors.
function describe(root) {
  const seen = new Map();
  const ancestors = [];
  let counter = 0;

  function number(v) {
    if (typeof v !== 'number') throw new Error('not a number');
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    if (v === 0 && 1 / v < 0) return '-0';
    return v;
  }

  function container(v, build) {
    seen.set(v, counter++);
    ancestors.push(v);
    try {
      return build();
    } finally {
      ancestors.pop();
    }
  }

  // A plain object: its prototype is null or some realm's Object.prototype
  // (a vm context has its own). A context's global object counts as plain
  // too: isolate hands it over as a dict of its enumerable globals.
  function isPlain(v) {
    const proto = Object.getPrototypeOf(v);
    if (proto === null) return true;
    const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor');
    if (ctor && typeof ctor.value === 'function' && ctor.value.name === 'Object' &&
        Object.getPrototypeOf(proto) === null) return true;
    const self = Object.getOwnPropertyDescriptor(v, 'globalThis');
    return self !== undefined && self.value === v;
  }

  function d(v) {
    switch (typeof v) {
      case 'undefined': return { t: 'undefined' };
      case 'boolean': return { t: 'boolean', v };
      case 'number': return { t: 'number', v: number(v) };
      case 'bigint': return { t: 'bigint', v: String(v) };
      case 'string': return { t: 'string', v };
      case 'symbol':
        return {
          t: 'symbol',
          description: v.description === undefined ? null : v.description,
          registered: Symbol.keyFor(v) !== undefined,
        };
      case 'function': return { t: 'function' };
      default: break;
    }
    if (v === null) return { t: 'null' };
    if (ancestors.includes(v)) return { t: 'cycle' };
    if (seen.has(v)) return { t: 'ref', id: seen.get(v) };
    if (Array.isArray(v)) {
      return container(v, () => {
        const items = [];
        for (let i = 0; i < v.length; i++) items.push(d(v[i]));
        return { t: 'array', v: items };
      });
    }
    if (util.types.isDate(v)) return { t: 'date', v: number(v.getTime()) };
    if (util.types.isRegExp(v)) return { t: 'regexp', source: v.source, flags: v.flags };
    if (util.types.isMap(v)) {
      return container(v, () => ({ t: 'map', v: [...v].map(([k, val]) => [d(k), d(val)]) }));
    }
    if (util.types.isSet(v)) {
      return container(v, () => ({ t: 'set', v: [...v].map(d) }));
    }
    if (util.types.isArrayBuffer(v)) {
      return { t: 'arraybuffer', hex: Buffer.from(v).toString('hex') };
    }
    if (ArrayBuffer.isView(v)) {
      const kind = util.types.isDataView(v) ? 'DataView' : Object.prototype.toString.call(v).slice(8, -1);
      return { t: 'typedarray', kind, hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
    }
    if (util.types.isNativeError(v)) return { t: 'error', name: String(v.name), message: String(v.message) };
    if (util.types.isPromise(v)) return { t: 'promise' };
    if (isPlain(v)) {
      return container(v, () => ({ t: 'object', v: Object.keys(v).map((k) => [k, d(v[k])]) }));
    }
    return { t: 'instance' };
  }

  return d(root);
}

// What a throw looks like: an Error by name and message (and `code` when it
// has a string one), anything else by its value.
function describeThrow(err, caseDef) {
  if (!util.types.isNativeError(err)) return { throw: describe(err) };
  const out = { name: String(err.name), message: String(err.message) };
  if (typeof err.code === 'string') out.code = err.code;
  if (caseDef.stack_location) out.at = stackLocation(String(err.stack));
  if (caseDef.stack_head) out.head = String(err.stack).split('\n').slice(0, caseDef.stack_head);
  return { error: out };
}

// "file:line" of the first stack frame: columns differ between engines.
function stackLocation(stack) {
  const m = /^\s*at (?:[^\n(]*\()?([^\s()]+):(\d+):\d+\)?$/m.exec(stack);
  return m ? `${m[1]}:${m[2]}` : null;
}

// ---- host functions: `{"$fn": name}` in a sandbox ---------------------------
// isolate_runner.py has the Python twins. A fresh set per sandbox, so that
// stateful ones (tick) start over in every case.
function hostFunctions() {
  let ticks = 0;
  return {
    double: (x) => x * 2,
    add: (a, b) => a + b,
    greet: (name) => 'hello ' + name,
    sum: (...args) => args.reduce((a, b) => a + b, 0),
    jsTypeof: (x) => typeof x,
    makeObj: () => ({ a: [1, 2], b: { c: 'd' } }),
    boom: () => { throw new Error('boom from host'); },
    tick: () => ++ticks,
    // isolate's own errors raised in a host function: a nested run's timeout, a bad option.
    innerTimeout: () => vm.runInNewContext('while (true) {}', {}, { timeout: 10 }),
    badTimeout: () => vm.runInNewContext('1', {}, { timeout: -1 }),
  };
}

// Sandbox specs are JSON plus a few tagged values JSON cannot express.
function materialize(spec, fns) {
  if (Array.isArray(spec)) return spec.map((x) => materialize(x, fns));
  if (spec === null || typeof spec !== 'object') return spec;
  if ('$fn' in spec) {
    if (!(spec.$fn in fns)) throw new Error('unknown host function ' + spec.$fn);
    return fns[spec.$fn];
  }
  if ('$undefined' in spec) return undefined;
  if ('$bigint' in spec) return BigInt(spec.$bigint);
  if ('$number' in spec) return Number(spec.$number); // "NaN", "Infinity", "-0"...
  if ('$date' in spec) return new Date(spec.$date);
  if ('$set' in spec) return new Set(materialize(spec.$set, fns));
  if ('$map' in spec) return new Map(materialize(spec.$map, fns));
  const out = {};
  for (const k of Object.keys(spec)) out[k] = materialize(spec[k], fns);
  return out;
}

function sandboxOf(caseDef, spec = caseDef.sandbox) {
  if (spec === undefined) return undefined;
  const sandbox = materialize(spec, hostFunctions());
  // self_keys: properties of the sandbox that hold the sandbox itself (a cycle JSON cannot write).
  // ('a.b': sandbox.a.b holds it.)
  if (spec === caseDef.sandbox) {
    for (const path of caseDef.self_keys || []) {
      const keys = path.split('.');
      let o = sandbox;
      for (const k of keys.slice(0, -1)) o = o[k];
      o[keys[keys.length - 1]] = sandbox;
    }
  }
  return sandbox;
}

// ---- running one case ------------------------------------------------------
function outcome(caseDef, fn) {
  try {
    return { result: describe(fn()) };
  } catch (err) {
    return describeThrow(err, caseDef);
  }
}

function codes(caseDef) {
  return Array.isArray(caseDef.code) ? caseDef.code : [caseDef.code];
}

// Single-code cases give {result|error|throw}; multi-code ones {steps: [...]}.
function steps(caseDef, fn) {
  const list = codes(caseDef).map((code) => outcome(caseDef, () => fn(code)));
  return Array.isArray(caseDef.code) ? { steps: list } : list[0];
}

const API = {
  runInNewContext(c) {
    const sandbox = sandboxOf(c);
    const out = steps(c, (code) => vm.runInNewContext(code, sandbox, c.options));
    return withSandbox(out, sandbox);
  },

  // Several scripts, one context (vm.createContext + vm.runInContext).
  'runInContext-sequence'(c) {
    const sandbox = sandboxOf(c) || {};
    vm.createContext(sandbox, c.context_options);
    const out = steps(c, (code) => vm.runInContext(code, sandbox, c.options));
    return withSandbox(out, sandbox);
  },

  // vm.runInNewContext on an object that createContext contextified already.
  'runInNewContext-contextified'(c) {
    const sandbox = sandboxOf(c) || {};
    vm.createContext(sandbox, c.context_options);
    const out = steps(c, (code) => vm.runInNewContext(code, sandbox, c.options));
    return withSandbox(out, sandbox);
  },

  // vm.runInContext on an object that was never contextified.
  'runInContext-uncontextified'(c) {
    const sandbox = sandboxOf(c) || {};
    return steps(c, (code) => vm.runInContext(code, sandbox, c.options));
  },

  // createContext, then globals set / deleted from the host side, then code.
  createContext(c) {
    const sandbox = sandboxOf(c) || {};
    const fns = hostFunctions();
    const out = { isContextBefore: vm.isContext(sandbox) };
    const created = outcome(c, () => { vm.createContext(sandbox, c.context_options); });
    if (!('result' in created)) return { ...out, create: created };
    out.isContextAfter = vm.isContext(sandbox);
    for (const [k, v] of Object.entries(c.set || {})) sandbox[k] = materialize(v, fns);
    for (const k of c.delete || []) delete sandbox[k];
    Object.assign(out, steps(c, (code) => vm.runInContext(code, sandbox, c.options)));
    if (c.get) out.get = c.get.map((k) => describe(sandbox[k]));
    return withSandbox(out, sandbox);
  },

  runInThisContext(c) {
    return steps(c, (code) => vm.runInThisContext(code, c.options));
  },

  // Construct a Script only (syntax errors surface here).
  Script(c) {
    return outcome(c, () => { new vm.Script(c.code, c.script_options); });
  },

  // One Script, run `repeat` times in one context.
  'Script.runInContext-multi'(c) {
    const sandbox = sandboxOf(c) || {};
    vm.createContext(sandbox);
    const script = new vm.Script(c.code, c.script_options);
    const list = [];
    for (let i = 0; i < c.repeat; i++) list.push(outcome(c, () => script.runInContext(sandbox, c.options)));
    return withSandbox({ steps: list }, sandbox);
  },

  // One Script, run once in each of several new contexts.
  'Script.runInNewContext-multi'(c) {
    const script = new vm.Script(c.code, c.script_options);
    const sandboxes = c.sandboxes.map((s) => sandboxOf(c, s));
    const list = sandboxes.map((s) => outcome(c, () => script.runInNewContext(s, c.options)));
    return { steps: list, sandboxes: sandboxes.map((s) => (s === undefined ? null : describe(s))) };
  },

  'Script.runInThisContext-multi'(c) {
    const script = new vm.Script(c.code, c.script_options);
    const list = [];
    for (let i = 0; i < c.repeat; i++) list.push(outcome(c, () => script.runInThisContext(c.options)));
    return { steps: list };
  },

  // vm.compileFunction(code, params, options), then called with each of `calls`.
  compileFunction(c) {
    const options = { ...(c.options || {}) };
    let sandbox;
    if (c.extensions) options.contextExtensions = c.extensions.map((s) => sandboxOf(c, s));
    if (c.parsing_sandbox !== undefined) {
      sandbox = sandboxOf(c, c.parsing_sandbox);
      options.parsingContext = vm.createContext(sandbox);
    }
    let fn;
    const compiled = outcome(c, () => { fn = vm.compileFunction(c.code, 'params' in c ? c.params : [], options); });
    if (!('result' in compiled)) return { compile: compiled };
    const list = (c.calls || [[]]).map((args) => outcome(c, () => fn(...materialize(args, hostFunctions()))));
    return withSandbox({ steps: list }, sandbox);
  },
};

function withSandbox(out, sandbox) {
  if (sandbox !== undefined) out.sandbox = describe(sandbox);
  return out;
}

function runCase(caseDef) {
  const api = API[caseDef.api];
  if (!api) throw new Error(`case ${caseDef.id}: unknown api ${caseDef.api}`);
  return api(caseDef);
}

function main() {
  const file = process.argv[2] || path.join(__dirname, 'cases.json');
  const { cases } = JSON.parse(fs.readFileSync(file, 'utf8'));
  const results = {};
  for (const caseDef of cases) results[caseDef.id] = runCase(caseDef);
  process.stdout.write(JSON.stringify({ node: process.version, results }) + '\n');
}

main();
