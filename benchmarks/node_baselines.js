'use strict';
// Node baselines for `python -m benchmarks`, measured inside one node process
// with process.hrtime.bigint(). Usage: node node_baselines.js '{"mode": ..., ...}'
// Prints one JSON object. Each mode is written the way node:vm's docs show it:
// compile once with `new vm.Script`, run it with `script.runInContext(ctx, opts)`;
// `vm.runInNewContext(code, sandbox)` for fresh contexts.
const vm = require('vm');

const params = JSON.parse(process.argv[2] || '{}');
const ns = () => process.hrtime.bigint();
const us = (a, b) => Number(b - a) / 1e3;

function roundTrip({ n, warmup = 1000, timeout }) {
  const context = vm.createContext({});
  const script = new vm.Script('1+1');
  const options = timeout ? { timeout } : undefined;
  for (let i = 0; i < warmup; i++) script.runInContext(context, options);
  const samples = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = ns();
    script.runInContext(context, options);
    samples[i] = us(t0, ns());
  }
  return { samples_us: samples };
}

function fresh({ n, warmup = 200 }) {
  // The documented one-liner, once per input, in a single process.
  for (let i = 0; i < warmup; i++) vm.runInNewContext('x + 1', { x: i });
  const t0 = ns();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += vm.runInNewContext('x + 1', { x: i });
  const seconds = Number(ns() - t0) / 1e9;
  return { n, seconds, rate: n / seconds, check: sum };
}

function cpu({ n, code, sandboxes }) {
  // Same job as the Python side: a fresh context per job, sandbox from JSON.
  const script = new vm.Script(code);
  script.runInNewContext(JSON.parse(sandboxes[0]));
  const t0 = ns();
  for (let i = 0; i < n; i++) script.runInNewContext(JSON.parse(sandboxes[i % sandboxes.length]));
  const seconds = Number(ns() - t0) / 1e9;
  return { n, seconds, rate: n / seconds };
}

function overshoot({ n, timeout = 20 }) {
  const context = vm.createContext({});
  const script = new vm.Script('while (true) {}');
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = ns();
    try {
      script.runInContext(context, { timeout });
    } catch (e) {
      if (e.code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw e;
    }
    samples.push(us(t0, ns()) / 1e3 - timeout);
  }
  return { overshoot_ms: samples };
}

function compile({ n, entries, functions }) {
  // new vm.Script of a large script, without and with V8's code cache.
  // The generator is the same as benchmarks/bench_compile.py's.
  const make = (salt) => 'var table = [' + Array.from({ length: entries }, (_, i) => i).join(',') + '];\n' +
    Array.from({ length: functions }, (_, i) => `function g${i}(x) { return x * ${i} + table.length; }\n`).join('') +
    'table.length // ' + salt;
  const plain = [], cached = [];
  const data = new vm.Script(make('cache')).createCachedData();
  for (let i = 0; i < n; i++) {
    const code = make(i);  // a fresh text each time: V8 caches compiled scripts in-process too
    let t0 = ns();
    new vm.Script(code);
    plain.push(us(t0, ns()) / 1e3);
    t0 = ns();
    const s = new vm.Script(make('cache'), { cachedData: data });
    cached.push(us(t0, ns()) / 1e3);
    if (s.cachedDataRejected) throw new Error('cached data rejected');
  }
  return { plain_ms: plain, cached_ms: cached, bytes: make(0).length };
}

const modes = { roundTrip, fresh, cpu, overshoot, compile };
const fn = modes[params.mode];
if (!fn) {
  console.error(`unknown mode ${params.mode}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(fn(params)));
