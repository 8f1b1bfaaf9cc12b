// A part of the bridge (workers/bridge.js, bridgePart): the ops most contexts never
// see (a fresh context is set up, run and read with the bridge's own few), made the
// first time a request names one of them. Their bytecode would cost every
// context's creation.
//
// This script makes one function and runs nothing else. The QuickJS worker reads
// its bytecode into a context only when the bridge asks for it, which may be after
// user code ran: so the function takes every intrinsic and bridge function it uses
// from `P`, what the bridge made before any user code ran, and reaches no global.
// The bridge's positions (`current`, `lastRun`: which script's frames are being
// named) stay the bridge's: set with setCurrent and setRun (both), read with lastRun().
(function moreOps(P) {
  'use strict';
  const ArrayJoin = P.ArrayJoin, CHECK_FUNCTION = P.CHECK_FUNCTION, FunctionCtor = P.FunctionCtor;
  const FunctionToString = P.FunctionToString, G = P.G, ObjectDefineProperty = P.ObjectDefineProperty;
  const ObjectGetOwnPropertyDescriptor = P.ObjectGetOwnPropertyDescriptor;
  const ObjectGetPrototypeOf = P.ObjectGetPrototypeOf, ObjectKeys = P.ObjectKeys;
  const ReflectApply = P.ReflectApply, ReflectConstruct = P.ReflectConstruct;
  const ReflectOwnKeys = P.ReflectOwnKeys, TAG = P.TAG, decodeArg = P.decodeArg, errorCtors = P.errorCtors;
  const functionOrigin = P.functionOrigin, handOver = P.handOver, handleValue = P.handleValue;
  const handles = P.handles, hasOwnCall = P.hasOwnCall, hostFunctionCache = P.hostFunctionCache;
  const indirectEval = P.indirectEval, mapSize = P.mapSize, newHandle = P.newHandle, newList = P.newList;
  const promiseThen = P.promiseThen, readInherited = P.readInherited, reply = P.reply, stackText = P.stackText;
  const stash = P.stash, weakMapGet = P.weakMapGet, wrapperClosed = P.wrapperClosed, setCurrent = P.setCurrent;
  const setRun = P.setRun, lastRun = P.lastRun;
  const more = {
    __proto__: null,
    run(code, filename, mirror, lineOffset, columnOffset, displayErrors) {
      let value, thrown = false, error;
      setRun({ __proto__: null, filename, lineOffset, columnOffset, firstLineShift: 0 });
      try {
        value = handOver(indirectEval(code));
      } catch (err) {
        thrown = true;
        error = err;
        stackText().rewriteStack(error, code, displayErrors);
      }
      return reply(() => { if (thrown) throw error; return value; }, mirror);
    },
    // Compile without running (see "Syntax checks" in workers/engine.py): the
    // code becomes the body of a function declaration after `throw 0`. Evaluating
    // that only instantiates declarations, then throws 0: no code of the body
    // runs, even one that closes the wrapper early ("}); f(); (function(){"),
    // which is caught by comparing the declared function's source with the
    // whole text. The worker runs this in a fresh context of its own.
    check_syntax(code, filename, lineOffset, columnOffset, displayErrors, params) {
      const withParams = params !== null && params !== undefined;
      // `throw 0` on a line of its own, and the header where the old wrapper
      // `(function (...) {` had it: QuickJS's columns of errors in a function
      // body depend on where its `function` keyword ends.
      const decl = withParams
        ? 'function ' + CHECK_FUNCTION + '(' + ReflectApply(ArrayJoin, params, [', ']) + ') {\n'
        : 'function ' + CHECK_FUNCTION + '(){';
      const head = 'throw 0;\n' + decl;
      setCurrent(withParams
        ? { __proto__: null, filename, lineOffset, columnOffset, firstLineShift: 0, firstLine: 3 }
        : { __proto__: null, filename, lineOffset, columnOffset, firstLineShift: decl.length, firstLine: 2 });
      let error = null;
      try {
        indirectEval(head + code + '\n}');
        error = wrapperClosed(filename);  // `throw 0` comes first: cannot happen
      } catch (err) {
        if (err === 0) {
          const desc = ObjectGetOwnPropertyDescriptor(G, CHECK_FUNCTION);
          try { delete G[CHECK_FUNCTION]; } catch (e) { /* non-configurable: leave it */ }
          const fn = desc === undefined ? undefined : desc.value;
          const expected = decl + code + '\n}';
          if (typeof fn !== 'function' || ReflectApply(FunctionToString, fn, []) !== expected) {
            error = wrapperClosed(filename);
          }
        } else if (stackText().compileErrorPosition(err)) {
          // Not a function body. If it compiles inside a function *expression*
          // (checked the same way: `throw 0` first, so nothing runs), it closes
          // that wrapper: Node's parser sees the stray '}' first.
          // Otherwise its error there is the one reported (as before this check
          // existed: QuickJS's columns in a function body depend on the header).
          const expr = withParams ? '(function (' + ReflectApply(ArrayJoin, params, [', ']) + ') {\n' : '(function(){';
          setCurrent(withParams
            ? { __proto__: null, filename, lineOffset, columnOffset, firstLineShift: 0, firstLine: 3 }
            : { __proto__: null, filename, lineOffset, columnOffset, firstLineShift: expr.length, firstLine: 2 });
          let exprError = null;
          try {
            indirectEval('throw 0;\n' + expr + code + '\n})');
          } catch (inner) {
            exprError = inner;
          }
          if (exprError === 0 || !stackText().compileErrorPosition(exprError)) {
            error = wrapperClosed(filename);
          } else {
            stackText().rewriteStack(exprError, code, displayErrors);
            error = exprError;
          }
        } else {
          error = wrapperClosed(filename);  // the declarations could not be instantiated
        }
      }
      return reply(() => { if (error) throw error; return true; }, false);
    },
    construct(id, args, mirror) {
      const fn = handleValue(id);
      setCurrent(ReflectApply(weakMapGet, functionOrigin, [fn]) || lastRun());
      let value, thrown = false, error;
      try {
        value = handOver(ReflectConstruct(fn, decodeArg(args)));
      } catch (err) { thrown = true; error = err; }
      return reply(() => { if (thrown) throw error; return value; }, mirror);
    },
    get(target, key) {
      setCurrent(lastRun());
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => {
        if (!(key in obj)) throw new errorCtors.ReferenceError(key + ' is not defined');
        return obj[key];
      }, false);
    },
    has(target, key) {
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => hasOwnCall(obj, key), false);
    },
    set(target, key, value) {
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => { obj[key] = decodeArg(value); return undefined; }, false);
    },
    delete(target, key) {
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => delete obj[key], false);
    },
    keys(target) {
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => ObjectKeys(obj), false);
    },
    promise_state(id) {
      setCurrent(lastRun());  // a rejection's stack names the script that made it
      const p = handleValue(id);
      let state = 'pending', value;
      ReflectApply(promiseThen, p, [
        (v) => { state = 'fulfilled'; value = v; },
        (e) => { state = 'rejected'; value = e; },
      ]);
      // The reactions run in the worker's job drain, before toJSON reads them.
      return reply(() => [state, value], false);
    },
    compile_function(code, params, filename, extensions, lineOffset, columnOffset) {
      // The body starts on the wrapper's second line: report it as line 1 (+ offset).
      setCurrent({ __proto__: null, filename, lineOffset: lineOffset || 0, columnOffset: columnOffset || 0,
                   firstLineShift: 0, firstLine: 2 });
      return reply(() => {
        const exts = decodeArg(extensions);
        const paramList = ReflectApply(ArrayJoin, params, [', ']);
        let fn;
        if (exts.length === 0) {
          fn = indirectEval('(function (' + paramList + ') {\n' + code + '\n})');
        } else {
          let src = '(function (';
          for (let i = 0; i < exts.length; i++) src += (i ? ', __isolate_ext' : '__isolate_ext') + i;
          src += ') {';
          for (let i = 0; i < exts.length; i++) src += ' with (__isolate_ext' + i + ')';
          src += ' { return function (' + paramList + ') {\n' + code + '\n}; } })';
          fn = ReflectApply(indirectEval(src), undefined, exts);
        }
        return fn;
      }, false);
    },
    // codeGeneration: { strings: false }. eval, and the constructors that
    // compile strings (Function and its async/generator kin), throw V8's
    // EvalError. Each constructor is replaced by a stand-in with the same
    // name, length and prototype, so `f.constructor === Function` and
    // `f instanceof Function` hold as before; a direct eval(...) is now a
    // call of a plain function, so it throws too.
    forbid_code_generation() {
      const refuse = () => { throw new errorCtors.EvalError('Code generation from strings disallowed for this context'); };
      function standIn(original) {
        const fn = function () { return refuse(); };
        ObjectDefineProperty(fn, 'name', { __proto__: null, value: original.name, configurable: true });
        ObjectDefineProperty(fn, 'length', { __proto__: null, value: original.length, configurable: true });
        ObjectDefineProperty(fn, 'prototype', { __proto__: null, value: original.prototype, writable: false,
                                                enumerable: false, configurable: false });
        ObjectDefineProperty(original.prototype, 'constructor', { __proto__: null, value: fn, writable: true,
                                                                  enumerable: false, configurable: true });
        return fn;
      }
      const evalStandIn = { eval(x) { return refuse(); } }.eval;
      ObjectDefineProperty(G, 'eval', { __proto__: null, value: evalStandIn, writable: true, enumerable: false,
                                        configurable: true });
      ObjectDefineProperty(G, 'Function', { __proto__: null, value: standIn(FunctionCtor), writable: true,
                                            enumerable: false, configurable: true });
      const kin = ['(async function () {})', '(function* () {})', '(async function* () {})'];
      for (let i = 0; i < kin.length; i++) {
        standIn(readInherited(ObjectGetPrototypeOf(indirectEval(kin[i])), 'constructor'));
      }
      return reply(() => undefined, false);
    },
    stats() {
      return reply(() => ({ handles: ReflectApply(mapSize, handles, []),
                            hostFunctions: ReflectApply(mapSize, hostFunctionCache, []) }), false);
    },
    // ES modules (workers/modules.py): a value decoded into the stash, for the worker to
    // use through the C API; and the stashed value handed to the host as a handle whatever
    // its kind (a module namespace or import.meta, which are null-prototype objects).
    stash_value(value) {
      stash.thrown = false;
      stash.value = decodeArg(value);
      return reply(() => undefined, false);
    },
    stash_handle(className) {
      const value = stash.value;
      stash.value = undefined;
      // Its string keys too: reading a namespace's keys with Object.keys would read the
      // bindings, and throw while one is uninitialized.
      // (Indexed, no Array.prototype method: nothing a script can hook runs here.)
      const all = ReflectOwnKeys(value), keys = newList();
      for (let i = 0, n = all.length, j = 0; i < n; i++) {
        if (typeof all[i] === 'string') {
          keys[j++] = all[i];
        }
      }
      const handle = { __proto__: null, [TAG]: 'h', k: 'object', i: newHandle(value), c: className, n: '' };
      const pair = newList();
      pair[0] = handle;
      pair[1] = keys;
      return { __proto__: null, toJSON: () => ({ __proto__: null, ok: true, v: pair, t: true }) };
    },
  };
  return more;
})
