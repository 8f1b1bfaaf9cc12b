// The JS side of the worker: installed once into every fresh QuickJS context.
//
// It is the only code that sees dukpy's host hooks. On installation it
// captures `call_python` in a closure and removes `dukpy`, `call_python` and
// `performance` from the global, so user code sees the standard globals only.
// dukpy puts both hooks back before every eval, so each entry into the
// bridge removes them again before any user code runs.
//
// Values leave the engine as "tagged JSON": plain JSON where JSON is exact,
// and {"\u0000": TAG, ...} objects for everything JSON would lose
// (undefined, NaN, -0, BigInt, Dates, functions, cycles, ...). The tags are
// listed in protocol/SPEC.md ("Tagged JSON inside the worker").
//
// The bridge answers one operation per eval. dukpy passes the operation in
// the global `dukpy` (parsed JSON); the bridge's reply is an object whose
// toJSON runs *after* dukpy has drained the promise jobs of that eval, so the
// reply (and the mirrored globals) reflect the state after microtasks ran.
(function installBridge(G) {
  'use strict';

  // Primordials: user code may replace builtins, the bridge must not care.
  const ObjectKeys = Object.keys;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectPrototype = Object.prototype;
  const ObjectToString = Object.prototype.toString;
  const hasOwn = Object.prototype.hasOwnProperty;
  const ArrayIsArray = Array.isArray;
  const ArrayBufferIsView = ArrayBuffer.isView;
  const JSONStringify = JSON.stringify;
  const indirectEval = G.eval;
  const ReflectApply = Reflect.apply;
  const FunctionToString = Function.prototype.toString;
  const ReflectOwnKeys = Reflect.ownKeys;
  const StringFromCharCode = String.fromCharCode;
  const MathMin = Math.min;
  const SymbolFor = Symbol.for;
  const SymbolKeyFor = Symbol.keyFor;
  const InternalErrorCtor = typeof G.InternalError === 'function' ? G.InternalError : Error;
  const ArrayCtor = Array, MapCtor = Map, SetCtor = Set, WeakMapCtor = WeakMap;
  const DateCtor = Date, RegExpCtor = RegExp, ErrorCtor = Error;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  const mapEntries = Map.prototype.entries, setValues = Set.prototype.values;
  const mapSet = Map.prototype.set, mapGet = Map.prototype.get;
  const mapHas = Map.prototype.has, mapDelete = Map.prototype.delete;
  const setAdd = Set.prototype.add;
  const dateGetTime = Date.prototype.getTime;
  const regexpSource = ObjectGetOwnPropertyDescriptor(RegExp.prototype, 'source').get;
  const regexpFlags = ObjectGetOwnPropertyDescriptor(RegExp.prototype, 'flags').get;
  const TypedArrayProto = ObjectGetPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = ObjectGetOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get;
  const StringCtor = String, BigIntCtor = BigInt, SymbolCtor = Symbol;
  const Uint8ArrayCtor = Uint8Array, ArrayBufferCtor = ArrayBuffer, DataViewCtor = DataView;

  // dukpy defines call_python afresh before every eval; installed from
  // bytecode there is none yet, so each entry takes the current one.
  let callPython = G.call_python;
  const TAG = '\u0000';

  function removeHostHooks() {
    // A script may have made these names non-configurable: then the delete
    // fails (strict mode throws) and the name keeps whatever the script put
    // there; the bridge works on regardless.
    try { delete G.dukpy; } catch (e) { /* non-configurable */ }
    try { delete G.call_python; } catch (e) { /* non-configurable */ }
  }
  const installOptions = G.dukpy;  // dukpy's jsvars of the installing eval (see "memory" below)
  removeHostHooks();
  delete G.performance;

  const typedArrayCtors = {
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array,
    BigUint64Array,
  };
  if (typeof G.Float16Array === 'function') typedArrayCtors.Float16Array = G.Float16Array;
  const errorCtors = {
    Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError,
    URIError, AggregateError,
  };
  if (typeof G.InternalError === 'function') errorCtors.InternalError = G.InternalError;

  // ---- handles: values passed by reference to the host ----------------
  const handles = new MapCtor();      // id -> value
  let nextHandleId = 1;
  function newHandle(value) {
    const id = nextHandleId++;
    ReflectApply(mapSet, handles, [id, value]);
    return id;
  }
  function handleValue(id) {
    if (!ReflectApply(mapHas, handles, [id])) {
      throw new ReferenceError('isolate: handle ' + id + ' was released');
    }
    return ReflectApply(mapGet, handles, [id]);
  }

  // ---- host functions: Python callables seen from JS -------------------
  const hostFunctionIds = new WeakMapCtor();   // JS function -> host id
  // Host functions live as long as their context: the host drops its table
  // of callables when the context is released.
  const hostFunctionCache = new MapCtor();      // host id -> JS function

  function hostFunction(id, name) {
    if (ReflectApply(mapHas, hostFunctionCache, [id])) {
      return ReflectApply(mapGet, hostFunctionCache, [id]);
    }
    const fn = function (...args) {
      const encodedArgs = encode(args);
      let reply;
      try {
        reply = callPython('call', id, encodedArgs.v, encodedArgs.t);
      } catch (err) {
        // dukpy saw a stop signal around the callback and threw a catchable
        // InternalError("interrupted"): wait for the engine's interrupt hook.
        if (err instanceof InternalErrorCtor && err.message === 'interrupted') {
          for (;;) { /* stopped by the engine's interrupt hook */ }
        }
        throw err;
      }
      if (reply !== null && typeof reply === 'object' && reply.abort === true) {
        // A timeout or interrupt arrived during the host call; the worker has
        // re-raised its signal. Wait for it here, where no catch can see it.
        for (;;) { /* stopped by the engine's interrupt hook */ }
      }
      if (reply === null || typeof reply !== 'object') {
        throw new ErrorCtor('isolate: malformed reply from the host');
      }
      if (reply.ok) return decode(reply.v);
      throw decode(reply.e);
    };
    ObjectDefineProperty(fn, 'name', { value: name || '' });
    hostFunctionIds.set(fn, id);
    ReflectApply(mapSet, hostFunctionCache, [id, fn]);
    return fn;
  }

  // ---- encoding: JS value -> tagged JSON ---------------------------------
  // Containers (arrays, plain objects, Maps, Sets, Errors) are numbered in
  // pre-order; a container met again becomes {TAG: 'R', i: number}.
  function encode(root) {
    const seen = new MapCtor();
    let counter = 0;
    let tagged = false;
    let refs = false;
    function tag(t, fields) {
      tagged = true;
      const out = { [TAG]: t };
      for (const k in fields) out[k] = fields[k];
      return out;
    }
    function number(container) {
      ReflectApply(mapSet, seen, [container, counter++]);
    }
    function enc(v) {
      switch (typeof v) {
        case 'string':
        case 'boolean':
          return v;
        case 'number':
          if (v !== v) return tag('n', { v: 'NaN' });
          if (v === Infinity) return tag('n', { v: 'Infinity' });
          if (v === -Infinity) return tag('n', { v: '-Infinity' });
          if (v === 0 && 1 / v < 0) return tag('n', { v: '-0' });
          return v;
        case 'undefined':
          return tag('u', {});
        case 'bigint':
          return tag('b', { v: StringCtor(v) });
        case 'symbol': {
          const key = SymbolKeyFor(v);
          return tag('y', key !== undefined ? { v: key, g: true } : { v: v.description === undefined ? null : v.description });
        }
        case 'function': {
          const hostId = hostFunctionIds.get(v);
          if (hostId !== undefined) return tag('H', { i: hostId });
          let name = '';
          try { name = typeof v.name === 'string' ? v.name : ''; } catch (e) { /* getter threw */ }
          if (!functionOrigin.has(v) && current.filename !== undefined) functionOrigin.set(v, current);
          return tag('h', { k: 'function', i: newHandle(v), c: 'Function', n: name });
        }
        default:
          break;
      }
      if (v === null) return null;
      if (ReflectApply(mapHas, seen, [v])) {
        refs = true;
        return tag('R', { i: ReflectApply(mapGet, seen, [v]) });
      }
      if (ArrayIsArray(v)) {
        number(v);
        const n = v.length;
        const out = new ArrayCtor(n);
        for (let i = 0; i < n; i++) out[i] = enc(v[i]);
        return out;
      }
      const proto = ObjectGetPrototypeOf(v);
      if (proto === ObjectPrototype || proto === null) {
        number(v);
        const keys = ObjectKeys(v);
        if (hasOwn.call(v, TAG)) {
          const entries = [];
          for (const k of keys) entries.push([k, enc(v[k])]);
          return tag('O', { e: entries });
        }
        const out = {};
        for (const k of keys) out[k] = enc(v[k]);
        return out;
      }
      const kind = ObjectToString.call(v);
      if (kind === '[object Date]') {
        const t = ReflectApply(dateGetTime, v, []);
        return tag('d', { v: t === t ? t : null });
      }
      if (kind === '[object RegExp]') {
        return tag('r', { s: ReflectApply(regexpSource, v, []), f: ReflectApply(regexpFlags, v, []) });
      }
      if (v instanceof MapCtor) {
        number(v);
        const entries = [];
        for (const [k, val] of ReflectApply(mapEntries, v, [])) entries.push([enc(k), enc(val)]);
        return tag('m', { e: entries });
      }
      if (v instanceof SetCtor) {
        number(v);
        const items = [];
        for (const item of ReflectApply(setValues, v, [])) items.push(enc(item));
        return tag('S', { e: items });
      }
      if (v instanceof ArrayBufferCtor) {
        return tag('A', { v: bytesToLatin1(new Uint8ArrayCtor(v)) });
      }
      if (ArrayBufferIsView(v)) {
        const k = v instanceof DataViewCtor ? 'DataView' : ReflectApply(typedArrayTag, v, []);
        return tag('t', { k, v: bytesToLatin1(new Uint8ArrayCtor(v.buffer, v.byteOffset, v.byteLength)) });
      }
      if (v instanceof ErrorCtor || kind === '[object Error]') {
        number(v);
        return tag('e', encodeErrorFields(v, enc));
      }
      if (v instanceof PromiseCtor) {
        handOver(v);
        return tag('h', { k: 'promise', i: newHandle(v), c: 'Promise', n: '' });
      }
      let cls = 'Object';
      try {
        const ctor = proto && proto.constructor;
        if (typeof ctor === 'function' && typeof ctor.name === 'string' && ctor.name) cls = ctor.name;
      } catch (e) { /* a getter threw: keep 'Object' */ }
      return tag('h', { k: 'object', i: newHandle(v), c: cls, n: '' });
    }
    const v = enc(root);
    return { v, t: tagged || refs, r: refs };
  }

  function encodeErrorFields(err, enc) {
    let name = 'Error', message = '', stack = '';
    try { name = StringCtor(err.name); } catch (e) { /* keep default */ }
    try { message = StringCtor(err.message); } catch (e) { /* keep default */ }
    try { stack = typeof err.stack === 'string' ? err.stack : ''; } catch (e) { /* keep default */ }
    if (!/^[^\n]*\n[^\n]*\n\s*\^/.test(stack)) stack = nodeStyleStack(name, message, cleanStack(stack));
    const props = {};
    for (const k of ObjectKeys(err)) {
      if (k === 'stack' || k === 'message') continue;
      try { props[k] = enc(err[k]); } catch (e) { /* skip unreadable */ }
    }
    return { name, message, stack, p: props };
  }

  // V8's stack starts with "Name: message"; QuickJS's holds the frames only.
  function nodeStyleStack(name, message, stack) {
    const head = message ? name + ': ' + message : name;
    if (stack.startsWith(head)) return stack;
    return head + '\n' + stack;
  }

  function bytesToLatin1(bytes) {
    const CHUNK = 8192;
    let out = '';
    for (let i = 0; i < bytes.length; i += CHUNK) {
      out += ReflectApply(StringFromCharCode, null, bytes.subarray(i, MathMin(i + CHUNK, bytes.length)));
    }
    return out;
  }
  function latin1ToBytes(s) {
    const bytes = new Uint8ArrayCtor(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes;
  }

  // ---- decoding: tagged JSON -> JS value ---------------------------------
  function decode(root) {
    const table = [];
    function dec(v) {
      if (v === null || typeof v !== 'object') return v;
      if (ArrayIsArray(v)) {
        const out = new ArrayCtor(v.length);
        table.push(out);
        for (let i = 0; i < v.length; i++) out[i] = dec(v[i]);
        return out;
      }
      if (!hasOwn.call(v, TAG)) {
        const out = {};
        table.push(out);
        for (const k of ObjectKeys(v)) out[k] = dec(v[k]);
        return out;
      }
      switch (v[TAG]) {
        case 'u': return undefined;
        case 'n': return v.v === '-0' ? -0 : +v.v;
        case 'b': return BigIntCtor(v.v);
        case 'y': return v.g ? SymbolFor(v.v) : SymbolCtor(v.v === null ? undefined : v.v);
        case 'd': return new DateCtor(v.v === null ? NaN : v.v);
        case 'r': return new RegExpCtor(v.s, v.f);
        case 'R': {
          if (v.i < 0 || v.i >= table.length) throw new ReferenceError('isolate: bad back-reference');
          return table[v.i];
        }
        case 'O': {
          const out = {};
          table.push(out);
          for (const [k, val] of v.e) out[k] = dec(val);
          return out;
        }
        case 'm': {
          const out = new MapCtor();
          table.push(out);
          for (const [k, val] of v.e) ReflectApply(mapSet, out, [dec(k), dec(val)]);
          return out;
        }
        case 'S': {
          const out = new SetCtor();
          table.push(out);
          for (const item of v.e) ReflectApply(setAdd, out, [dec(item)]);
          return out;
        }
        case 'A': return latin1ToBytes(v.v).buffer;
        case 't': {
          const bytes = latin1ToBytes(v.v);
          if (v.k === 'DataView') return new DataViewCtor(bytes.buffer);
          const Ctor = typedArrayCtors[v.k];
          if (!Ctor) throw new TypeError('isolate: unknown typed array ' + v.k);
          return new Ctor(bytes.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
        }
        case 'e': {
          const Ctor = hasOwn.call(errorCtors, v.name) ? errorCtors[v.name] : ErrorCtor;
          const err = v.name === 'AggregateError' ? new Ctor([], v.message) : new Ctor(v.message);
          table.push(err);
          if (!hasOwn.call(errorCtors, v.name)) {
            ObjectDefineProperty(err, 'name', { value: v.name, writable: true, configurable: true });
          }
          if (v.stack) ObjectDefineProperty(err, 'stack', { value: v.stack, writable: true, configurable: true });
          if (v.p) for (const k of ObjectKeys(v.p)) err[k] = dec(v.p[k]);
          return err;
        }
        case 'h': return handleValue(v.i);
        case 'H': return hostFunction(v.i, v.n);
        default:
          throw new TypeError('isolate: unknown value tag ' + StringCtor(v[TAG]));
      }
    }
    return dec(root);
  }
  function decodeArg(arg) {
    // [value, tagged?]: untagged values are plain JSON and need no walk.
    return arg[1] ? decode(arg[0]) : arg[0];
  }

  // ---- running user code --------------------------------------------------
  // A promise handed to the host is the host's to handle: mark it handled
  // now, before dukpy's job drain would report its rejection as unhandled.
  function handOver(value) {
    if (value instanceof PromiseCtor) ReflectApply(promiseThen, value, [undefined, () => {}]);
    return value;
  }

  // Frames of code run through indirect eval are reported as <input>; frames
  // of the bridge itself as <dukpy> (or native helpers below it). Node shows
  // the script's filename, with the caller's line and column offsets, and
  // nothing of its own machinery.
  let current = { filename: undefined, lineOffset: 0, columnOffset: 0, firstLineShift: 0 };
  // Frames of functions called later (the call op) are named after the most
  // recent script: QuickJS's eval does not keep a file name per function.
  let lastRun = current;
  // Functions handed to the host remember the positions of the code that made
  // them, so a later call reports their own file, not the latest script's.
  const functionOrigin = new WeakMapCtor();
  // `firstLine` is the engine's line number of the user's first line (2 when
  // the code was wrapped in a function header line), `firstLineShift` the
  // columns a same-line wrapper added before it.
  function userLine(line) {
    return line - (current.firstLine || 1) + 1;
  }
  function position(line, col) {
    line = +line; col = +col;
    if (userLine(line) === 1) col = Math.max(col - current.firstLineShift, 1) + current.columnOffset;
    return (userLine(line) + current.lineOffset) + ':' + col;
  }
  function cleanStack(stack) {
    // The bridge's own frames (e.g. the code-generation stand-ins) are not the user's.
    const lines = stack.split('\n').filter((l) => !/\(<isolate-bridge>:\d+:\d+\)$/.test(l));
    while (lines.length && (lines[lines.length - 1] === '' || /\((?:<dukpy>|<isolate-bridge>):\d+:\d+\)$|\(native\)$/.test(lines[lines.length - 1]))) {
      lines.pop();
    }
    // Top-level code of a script compiled with its real file name: QuickJS
    // says "at <eval> (a.js:3:7)" where Node says "at a.js:3:7".
    // QuickJS names an anonymous function "<anonymous>", Node leaves it out.
    let out = lines.join('\n').replace(/^(\s+at )(?:<eval>|<anonymous>) \(((?!<input>:)[^\n]*:\d+:\d+)\)$/gm, '$1$2');
    // Code compiled with an empty file name (compileFunction's default): V8 says <anonymous>.
    out = out.replace(/^(\s+at (?:[^\n(]* \()?):(\d+:\d+\)?)$/gm, '$1<anonymous>:$2');
    if (current.filename !== undefined) {
      const file = current.filename;
      out = out.replace(/at <eval> \(<input>:(\d+):(\d+)\)/g, (m, l, c) => 'at ' + file + ':' + position(l, c));
      out = out.replace(/\(<input>:(\d+):(\d+)\)/g, (m, l, c) => '(' + file + ':' + position(l, c) + ')');
      out = out.replace(/ <input>:(\d+):(\d+)/g, (m, l, c) => ' ' + file + ':' + position(l, c));
    }
    return out;
  }
  // A compile error of the script itself has exactly one frame, "at <input>:L:C".
  function compileErrorPosition(err) {
    if (!(err instanceof SyntaxError) || typeof err.stack !== 'string') return null;
    const frames = err.stack.split('\n').filter((l) => l.trim() !== '' && !/\((?:<dukpy>|<isolate-bridge>):\d+:\d+\)$|\(native\)$/.test(l));
    if (frames.length !== 1) return null;
    const m = /^\s+at <input>:(\d+):(\d+)$/.exec(frames[0]);
    return m ? [+m[1], +m[2]] : null;
  }
  // A compile error of a script compiled with its real file name has one
  // frame, "at FILE:L:C", with the caller's offsets already applied.
  function nativeCompileErrorPosition(err) {
    if (!(err instanceof SyntaxError) || typeof err.stack !== 'string') return null;
    const frames = err.stack.split('\n').filter((l) => l.trim() !== '');
    if (frames.length !== 1) return null;
    const m = /^\s+at (.*):(\d+):(\d+)$/.exec(frames[0]);
    return m ? [+m[2], +m[3]] : null;
  }
  function rewriteNativeCompileError(err, code, filename, lineOffset, columnOffset, displayErrors) {
    try {
      let stack = nodeStyleStack(StringCtor(err.name), StringCtor(err.message), cleanStack(err.stack));
      const pos = displayErrors ? nativeCompileErrorPosition(err) : null;
      if (pos) {
        const line = pos[0] - lineOffset, col = line === 1 ? Math.max(pos[1] - columnOffset, 1) : pos[1];
        const sourceLine = code.split('\n')[line - 1] || '';
        stack = filename + ':' + pos[0] + '\n' + sourceLine + '\n' +
          ' '.repeat(Math.max(col - 1, 0)) + '^\n\n' + stack;
      }
      ObjectDefineProperty(err, 'stack', { value: stack, writable: true, configurable: true });
    } catch (e) { /* frozen error: leave it */ }
  }
  function rewriteStack(err, code, displayErrors) {
    try {
      if (err === null || typeof err !== 'object' || typeof err.stack !== 'string') return;
      let stack = nodeStyleStack(StringCtor(err.name), StringCtor(err.message), cleanStack(err.stack));
      const pos = displayErrors ? compileErrorPosition(err) : null;
      if (pos) {
        // Node's displayErrors: "file:line", the source line, a caret, a blank line.
        const line = userLine(pos[0]), col = pos[1];
        const sourceLine = code.split('\n')[line - 1] || '';
        const caretCol = line === 1 ? Math.max(col - current.firstLineShift, 1) : col;
        stack = current.filename + ':' + (line + current.lineOffset) + '\n' + sourceLine + '\n' +
          ' '.repeat(Math.max(caretCol - 1, 0)) + '^\n\n' + stack;
      }
      ObjectDefineProperty(err, 'stack', { value: stack, writable: true, configurable: true });
    } catch (e) { /* frozen error: leave it */ }
  }

  function globalsSnapshot() {
    const out = {};
    for (const k of ObjectKeys(G)) out[k] = G[k];
    return out;
  }

  // One reply per operation. `value` is encoded lazily by toJSON, i.e. after
  // dukpy drained the jobs the operation queued.
  //
  // `produce` runs once: the worker may serialize a reply a second time (after
  // freeing memory, when the first attempt ran out of it), and that must not
  // run the op's user code (a getter, a Proxy trap) again.
  function reply(produce, mirror) {
    const info = current;  // positions in stacks refer to this op's code
    let produced = false, threw = false, value, error;
    return {
      toJSON: function () {
        const outer = current;
        current = info;
        try {
          if (!produced) {
            produced = true;
            try { value = produce(); } catch (err) { threw = true; error = relieve(err); }
          }
          return encodeReply(threw, error, value, mirror);
        } finally { current = outer; }
      },
    };
  }
  function encodeReply(threw, error, value, mirror) {
        let out;
        if (threw) {
          out = failure(error, false);
        } else {
          try {
            const e = encode(value);
            out = { ok: true, v: e.v, t: e.t };
          } catch (err) {
            out = failure(relieve(err), true);
          }
        }
        if (mirror) {
          try {
            const g = encode(globalsSnapshot());
            out.g = g.v;
            out.gt = g.t;
          } catch (err) { /* an unreadable global: skip the mirror */ }
        }
        return out;
  }
  // `enc`: the op succeeded but its value could not be encoded (e.g. for lack of
  // memory: the worker may then collect garbage and serialize the reply again).
  function failure(err, enc) {
    let e;
    try { e = encode(err); } catch (inner) { e = encode(new ErrorCtor('isolate: unencodable exception')); }
    return enc ? { ok: false, e: e.v, t: e.t, enc: true } : { ok: false, e: e.v, t: e.t };
  }

  // ---- memory: replying at the engine's memory limit -------------------------
  // At its limit QuickJS throws InternalError "out of memory", or null when it
  // cannot allocate even that error, and the bridge's own reply would fail too.
  // Where the worker can raise the runtime's limit (the C API), it lends a
  // reserve itself (EngineContext, "At the memory limit"). Where it cannot
  // (dukpy's eval only), the bridge holds a ballast of `reserve` bytes (from
  // the installing eval's jsvars) and frees it as soon as it catches running out
  // of memory: the reply can be built, and the next op can run and free memory.
  // The ballast is taken again at the start of an op once there is room for it
  // twice over.
  const ballastBytes = installOptions !== null && typeof installOptions === 'object' &&
    typeof installOptions.reserve === 'number' ? installOptions.reserve : 0;
  let ballast = ballastBytes > 0 ? new ArrayBufferCtor(ballastBytes) : null;
  function isOutOfMemory(err) {
    try {
      return err instanceof InternalErrorCtor && err.message === 'out of memory';
    } catch (e) {
      return false;
    }
  }
  // Called first where the bridge catches what an op threw.
  function relieve(err) {
    if (ballast === null) return err;
    if (err === null) {
      // null: a script's `throw null`, or no room for the error. Tell them apart
      // by trying to allocate a little (before freeing anything).
      try {
        new ArrayBufferCtor(1024);
        return err;
      } catch (e) {
        ballast = null;
        return new InternalErrorCtor('out of memory');
      }
    }
    if (isOutOfMemory(err)) ballast = null;
    return err;
  }
  function reacquireBallast() {
    try {
      let room = new ArrayBufferCtor(2 * ballastBytes);
      room = null;
      ballast = new ArrayBufferCtor(ballastBytes);
    } catch (e) { /* still near the limit */ }
  }

  // Primordials of the ops below (kept apart from the encoder's).
  const ArrayJoin = Array.prototype.join;
  const ReflectConstruct = Reflect.construct;
  const FunctionCall = Function.prototype.call;
  const mapSize = ObjectGetOwnPropertyDescriptor(Map.prototype, 'size').get;
  const CHECK_FUNCTION = '__isolate_body';

  function wrapperClosed(filename) {
    const error = new SyntaxError("Unexpected token '}'");
    ObjectDefineProperty(error, 'stack', { value: "SyntaxError: Unexpected token '}'\n    at " + filename, writable: true, configurable: true });
    return error;
  }

  // The outcome of code the worker ran through QuickJS's C API (a script
  // compiled with its real file name): the worker stores the completion value
  // or the exception here, then the `finish` op replies with it. The worker
  // takes this object once (see EngineContext._native_ready) and the global
  // keeps no trace of it.
  // `started`: the token of the latest op entered through the C API whose op began
  // (see enter), so the worker knows whether a failed entry ran anything.
  const stash = { __proto__: null, thrown: false, value: undefined, enter: undefined, callPython: undefined,
                  started: 0 };
  ObjectDefineProperty(G, SymbolFor('isolate.stash'), { value: stash, configurable: true });
  function takeStash() {
    const value = stash.value;
    stash.thrown = false;
    stash.value = undefined;
    return value;
  }

  const ops = {
    // Reply with the stashed outcome of a run (compileError: of a compile).
    finish(mirror, compileError, code, filename, lineOffset, columnOffset, displayErrors) {
      const thrown = stash.thrown, value = takeStash();  // (no destructuring: no iterator to hook)
      current = lastRun = { filename: undefined, lineOffset: 0, columnOffset: 0, firstLineShift: 0 };
      if (thrown && compileError) {
        rewriteNativeCompileError(value, code, filename, lineOffset, columnOffset, displayErrors);
      }
      if (!thrown) handOver(value);
      return reply(() => { if (thrown) throw value; return value; }, mirror);
    },
    run(code, filename, mirror, lineOffset, columnOffset, displayErrors) {
      let value, thrown = false, error;
      current = lastRun = { filename, lineOffset, columnOffset, firstLineShift: 0 };
      try {
        value = handOver(indirectEval(code));
      } catch (err) {
        thrown = true;
        error = relieve(err);
        rewriteStack(error, code, displayErrors);
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
      current = withParams
        ? { filename, lineOffset, columnOffset, firstLineShift: 0, firstLine: 3 }
        : { filename, lineOffset, columnOffset, firstLineShift: decl.length, firstLine: 2 };
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
        } else if (compileErrorPosition(err)) {
          // Not a function body. If it compiles inside a function *expression*
          // (checked the same way: `throw 0` first, so nothing runs), it closes
          // that wrapper: Node's parser sees the stray '}' first.
          // Otherwise its error there is the one reported (as before this check
          // existed: QuickJS's columns in a function body depend on the header).
          const expr = withParams ? '(function (' + ReflectApply(ArrayJoin, params, [', ']) + ') {\n' : '(function(){';
          current = withParams
            ? { filename, lineOffset, columnOffset, firstLineShift: 0, firstLine: 3 }
            : { filename, lineOffset, columnOffset, firstLineShift: expr.length, firstLine: 2 };
          let exprError = null;
          try {
            indirectEval('throw 0;\n' + expr + code + '\n})');
          } catch (inner) {
            exprError = inner;
          }
          if (exprError === 0 || !compileErrorPosition(exprError)) {
            error = wrapperClosed(filename);
          } else {
            rewriteStack(exprError, code, displayErrors);
            error = exprError;
          }
        } else {
          error = wrapperClosed(filename);  // the declarations could not be instantiated
        }
      }
      return reply(() => { if (error) throw error; return true; }, false);
    },
    call(id, args, mirror) {
      const fn = handleValue(id);
      current = functionOrigin.get(fn) || lastRun;
      let value, thrown = false, error;
      try {
        value = handOver(ReflectApply(fn, undefined, decodeArg(args)));
      } catch (err) { thrown = true; error = relieve(err); }
      return reply(() => { if (thrown) throw error; return value; }, mirror);
    },
    construct(id, args, mirror) {
      const fn = handleValue(id);
      current = functionOrigin.get(fn) || lastRun;
      let value, thrown = false, error;
      try {
        value = handOver(ReflectConstruct(fn, decodeArg(args)));
      } catch (err) { thrown = true; error = relieve(err); }
      return reply(() => { if (thrown) throw error; return value; }, mirror);
    },
    set_globals(entries) {
      const values = decodeArg(entries);
      // Defined, not assigned: a sandbox key named like a builtin (JSON, Proxy)
      // must become an own enumerable global, as Node's contextified object has it.
      for (const k of ObjectKeys(values)) {
        try {
          ObjectDefineProperty(G, k, { value: values[k], writable: true, enumerable: true, configurable: true });
        } catch (e) {
          G[k] = values[k];  // a non-configurable global (undefined, NaN): plain assignment semantics
        }
      }
      return reply(() => undefined, false);
    },
    get(target, key) {
      current = lastRun;
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => {
        if (!(key in obj)) throw new ReferenceError(key + ' is not defined');
        return obj[key];
      }, false);
    },
    has(target, key) {
      const obj = target === 0 ? G : handleValue(target);
      return reply(() => hasOwn.call(obj, key), false);
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
      current = lastRun;  // a rejection's stack names the script that made it
      const p = handleValue(id);
      let state = 'pending', value;
      ReflectApply(promiseThen, p, [
        (v) => { state = 'fulfilled'; value = v; },
        (e) => { state = 'rejected'; value = e; },
      ]);
      // The reactions run in dukpy's job drain, before toJSON reads them.
      return reply(() => [state, value], false);
    },
    compile_function(code, params, filename, extensions, lineOffset, columnOffset) {
      // The body starts on the wrapper's second line: report it as line 1 (+ offset).
      current = { filename, lineOffset: lineOffset || 0, columnOffset: columnOffset || 0,
                  firstLineShift: 0, firstLine: 2 };
      return reply(() => {
        const exts = decodeArg(extensions);
        const paramList = params.join(', ');
        let fn;
        if (exts.length === 0) {
          fn = indirectEval('(function (' + paramList + ') {\n' + code + '\n})');
        } else {
          let src = '(function (' + exts.map((_, i) => '__isolate_ext' + i).join(', ') + ') {';
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
      const refuse = () => { throw new EvalError('Code generation from strings disallowed for this context'); };
      function standIn(original) {
        const fn = function () { return refuse(); };
        ObjectDefineProperty(fn, 'name', { value: original.name, configurable: true });
        ObjectDefineProperty(fn, 'length', { value: original.length, configurable: true });
        ObjectDefineProperty(fn, 'prototype', { value: original.prototype, writable: false,
                                                enumerable: false, configurable: false });
        ObjectDefineProperty(original.prototype, 'constructor', { value: fn, writable: true,
                                                                  enumerable: false, configurable: true });
        return fn;
      }
      const evalStandIn = { eval(x) { return refuse(); } }.eval;
      ObjectDefineProperty(G, 'eval', { value: evalStandIn, writable: true, enumerable: false, configurable: true });
      ObjectDefineProperty(G, 'Function', { value: standIn(Function), writable: true, enumerable: false,
                                            configurable: true });
      for (const src of ['(async function () {})', '(function* () {})', '(async function* () {})']) {
        standIn(ObjectGetPrototypeOf(indirectEval(src)).constructor);
      }
      return reply(() => undefined, false);
    },
    // release and stats run outside any call of the user's: no user code may run
    // here (no iterator protocol, no `size` looked up on Map.prototype).
    release(ids) {
      const n = ids.length;
      for (let i = 0; i < n; i++) ReflectApply(mapDelete, handles, [ids[i]]);
      return reply(() => ReflectApply(mapSize, handles, []), false);
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
      const all = ReflectOwnKeys(value), keys = [];
      for (let i = 0, n = all.length, j = 0; i < n; i++) {
        if (typeof all[i] === 'string') {
          ObjectDefineProperty(keys, j++, { __proto__: null, value: all[i], writable: true, enumerable: true,
                                            configurable: true });
        }
      }
      const handle = { [TAG]: 'h', k: 'object', i: newHandle(value), c: className, n: '' };
      return { toJSON: () => ({ ok: true, v: [handle, keys], t: true }) };
    },
  };

  // Entered either by dukpy's eval (the request in the `dukpy` global) or, once
  // the worker holds this function, called directly with the request as JSON text.
  const JSONParse = JSON.parse;
  //
  // Nothing here may run user code (the op itself may): the request's array is
  // read by index only (no slice, no iterator, whose lookups a script could
  // hook), and once the worker calls through the C API, a `call_python` a
  // script put on the global is not taken for dukpy's.
  //
  // `token` (C API calls only) is a number that grows with every call; it is
  // written to stash.started just before the op runs. An entry that fails with
  // stash.started below its token ran nothing (the worker may retry it, e.g.
  // after making memory); a nested op can only start once an outer one has.
  let viaStash = false;
  function enter(requestText, token) {
    let request;
    if (requestText === undefined) {
      request = G.dukpy;
      if (!viaStash) {
        const hook = ObjectGetOwnPropertyDescriptor(G, 'call_python');
        if (hook !== undefined && typeof hook.value === 'function') callPython = hook.value;
      }
    } else {
      request = JSONParse(requestText);
      if (stash.callPython !== undefined) {  // handed over by the worker (no dukpy eval)
        callPython = stash.callPython;
        stash.callPython = undefined;
        viaStash = true;
      }
    }
    if (ballast === null && ballastBytes > 0) reacquireBallast();
    const saved = current;  // a nested op (from a host call) must not leak its file into ours
    removeHostHooks();
    const op = request[0];
    if (!ReflectApply(hasOwn, ops, [op])) return { toJSON: () => failure(new TypeError('isolate: unknown op ' + op)) };
    if (token !== undefined) stash.started = token;
    try {
      // ops[op].call(op, ...request.slice(1)), with the primordial `call`: the
      // request's own elements are the arguments, with no copy and no hook.
      return ReflectApply(FunctionCall, ops[op], request);
    } catch (err) {
      const error = relieve(err);
      return { toJSON: () => failure(error) };
    } finally {
      current = saved;
    }
  }

  stash.enter = enter;
  // dukpy's eval finds the bridge here. A worker that calls the entry through
  // the C API (the stash) deletes this too, so the global keeps no trace.
  ObjectDefineProperty(G, SymbolFor('isolate.bridge'), {
    value: enter, writable: false, enumerable: false, configurable: true,
  });
})(globalThis);
