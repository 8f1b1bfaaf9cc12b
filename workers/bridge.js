// The JS side of the worker: installed once into every fresh QuickJS context.
//
// The worker loads it from bytecode (workers/engine.py, "Installing the
// bridge from bytecode"); its completion value is the stash, an object only
// the worker holds: it calls the bridge's entry (stash.enter) through
// QuickJS's C API with one operation per call, and hands the bridge its host
// hook (stash.callPython, a function of a bare realm no script reaches). The
// global keeps no trace of either. On installation the bridge removes
// `performance` from the global, so user code sees the standard globals only.
//
// Values leave the engine as "tagged JSON": plain JSON where JSON is exact,
// and {"\u0000": TAG, ...} objects for everything JSON would lose
// (undefined, NaN, -0, BigInt, Dates, functions, cycles, ...). The tags are
// listed in protocol/SPEC.md ("Tagged JSON inside the worker").
//
// An operation's reply is an object whose toJSON the worker runs (by
// serializing it) *after* it drained the promise jobs the operation queued,
// so the reply (and the mirrored globals) reflect the state after
// microtasks ran.
(function installBridge(G, parts) {
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
  const Int32ArrayCtor = Int32Array;

  // The host hook: handed over by the worker through the stash before the first op,
  // with `hookCalls`, a counter of its calls in progress over memory the worker reads
  // (workers/engine.py, _in_host_hook: stop signals wait while it is not zero).
  // `quickjsWorker`: the worker is workers/engine.py's, which hands the counter over,
  // answers askUnshared and reads split replies (see encodeReply); the V8 worker
  // (workers/v8engine.py) does none of that, and its counter is the bridge's own.
  let callPython, hookCalls = new Int32ArrayCtor(1), quickjsWorker = false;
  const TAG = '\u0000';
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

  // ---- Error.prepareStackTrace: frames of the bridge stay hidden -----------
  // QuickJS-ng calls a function set as Error.prepareStackTrace with V8-style
  // CallSites for every frame on the runtime's stack (up to Error.stackTraceLimit,
  // at most 64), and CallSite.getFunction() returns each frame's function, strict
  // or not (V8 returns undefined for strict frames; QuickJS-ng 0.11 has no such
  // rule, so 'use strict' protects nothing). A script that sets it and makes an
  // error while the bridge is on the stack (in a getter or Proxy trap the encoder
  // reads, a toString, a host call, a promise's species lookup) would get the
  // bridge's functions, and during a nested host call the hidden realm's
  // call_python. So the engine's own setter is taken away from the script: the
  // accessor below keeps what the script set, and gives the engine `screened`,
  // which hands the script's function the CallSites without the bridge's frames
  // (nor those of natives the bridge called: a CallSite's receiver, if an engine
  // version ever exposes it, would be the bridge's). Function.prototype.caller and
  // arguments.callee.caller give nothing in QuickJS (a thrower, undefined).
  const prepareHook = ObjectGetOwnPropertyDescriptor(ErrorCtor, 'prepareStackTrace');
  const limitHook = ObjectGetOwnPropertyDescriptor(ErrorCtor, 'stackTraceLimit');
  // `screen`: the function the engine gets, made when the script first sets one.
  let userPrepare, screen = null;
  // The rest of the bridge is a function of its own, called once, here. QuickJS links
  // each closure to every variable it captures from its maker's frame by a linear
  // search of the variables that frame has already lent out (get_var_ref): with the
  // ~200 names of the bridge in one frame that was ~34,000 steps per context. The
  // intrinsics above are now captured once, by this function, and its closures take
  // them from it directly: ~20,000 steps, 17 us less per context (4% of making and
  // freeing one, in-process).
  return (function bridgeBody() {
    if (prepareHook !== undefined && typeof prepareHook.set === 'function') {
      ObjectDefineProperty(ErrorCtor, 'prepareStackTrace', {
        __proto__: null, enumerable: false, configurable: true,
        get: function prepareStackTrace() { return userPrepare; },
        set: function prepareStackTrace(value) {
          if (typeof value === 'function' && screen === null) screen = screenMade();
          userPrepare = value;
          ReflectApply(prepareHook.set, ErrorCtor, [typeof value === 'function' ? screen : value]);
        },
      });
    }
    function screenMade() {
      // The CallSite methods, read off a CallSite the bridge makes itself: none exists
      // before a function is first set, so no script can have touched their prototype.
      const limit = ReflectApply(limitHook.get, ErrorCtor, []);
      ReflectApply(limitHook.set, ErrorCtor, [1]);
      ReflectApply(prepareHook.set, ErrorCtor, [(error, sites) => sites]);
      let sites;
      try {
        sites = new ErrorCtor().stack;
      } finally {
        ReflectApply(prepareHook.set, ErrorCtor, [undefined]);
        ReflectApply(limitHook.set, ErrorCtor, [limit]);
      }
      const proto = ObjectGetPrototypeOf(sites[0]);
      const method = (name) => ObjectGetOwnPropertyDescriptor(proto, name).value;
      const siteFunction = method('getFunction'), siteFile = method('getFileName');
      const siteLine = method('getLineNumber'), siteIsNative = method('isNative');
      // A frame of the bridge: its bytecode has no debug tables (workers/engine.py), so
      // its file name is empty and its line 0 (a script's lines start at 1); or the
      // host hook, a native of the hidden realm.
      function bridgeSite(site) {
        if (ReflectApply(siteIsNative, site, [])) return ReflectApply(siteFunction, site, []) === callPython;
        return ReflectApply(siteFile, site, []) === '' && ReflectApply(siteLine, site, []) === 0;
      }
      return function screened(error, sites) {
        const n = sites.length, hidden = newList();
        // From the outermost frame in: a native is hidden when its caller is (the
        // frame past the last one counts as the bridge's).
        let below = true;
        for (let i = n - 1; i >= 0; i--) {
          const site = sites[i];
          below = hidden[i] = bridgeSite(site) || (below && ReflectApply(siteIsNative, site, []));
        }
        const kept = newList();
        let k = 0;
        for (let i = 0; i < n; i++) {
          if (!hidden[i]) kept[k++] = sites[i];
        }
        ObjectSetPrototypeOf(kept, ArrayPrototype);
        return ReflectApply(userPrepare, ErrorCtor, [error, kept]);
      };
    }
    // The stack text of an Error the bridge makes for its own use: never through the
    // script's prepareStackTrace. '' where the engine made none (inside a
    // prepareStackTrace call, QuickJS makes no stacks).
    function ownStack() {
      const screening = typeof userPrepare === 'function';
      if (screening) ReflectApply(prepareHook.set, ErrorCtor, [undefined]);
      try {
        const stack = new ErrorCtor().stack;
        return typeof stack === 'string' ? stack : '';
      } finally {
        if (screening) ReflectApply(prepareHook.set, ErrorCtor, [screen]);
      }
    }

    // ---- handles: values passed by reference to the host ----------------
    const handles = new MapCtor();      // id -> value
    let nextHandleId = 1;
    function newHandle(value) {
      const id = nextHandleId++;
      ReflectApply(mapSet, handles, [id, value]);
      return id;
    }
    function handleValue(id) {
      if (id === 0) return G;  // handle 0: the global object (as the target 0 of get/set)
      if (!ReflectApply(mapHas, handles, [id])) {
        throw new errorCtors.ReferenceError('isolate: handle ' + id + ' was released');
      }
      return ReflectApply(mapGet, handles, [id]);
    }

    // ---- host functions: Python callables seen from JS -------------------
    const hostFunctionIds = new WeakMapCtor();   // JS function -> host id
    // Host functions live as long as their context: the host drops its table
    // of callables when the context is released.
    const hostFunctionCache = new MapCtor();      // host id -> JS function

    const StringIndexOf = String.prototype.indexOf;
    function stoppedInCallback(message) {
      if (typeof message !== 'string') return false;
      if (message === 'interrupted') return true;
      return ReflectApply(StringIndexOf, message, ['Error while calling Python Function']) === 0 &&
        (ReflectApply(StringIndexOf, message, ['ScriptInterrupted(']) >= 0 ||
         ReflectApply(StringIndexOf, message, ['ScriptTimeout(']) >= 0);
    }

    // An error of the host hook's realm, remade in this one (by name, message only).
    function hookError(name, message) {
      const Ctor = typeof name === 'string' && hasOwnCall(errorCtors, name) ? errorCtors[name] : ErrorCtor;
      return Ctor === AggregateErrorCtor ? new Ctor(NO_ERRORS, StringCtor(message)) : new Ctor(StringCtor(message));
    }

    function hostFunction(id, name) {
      if (ReflectApply(mapHas, hostFunctionCache, [id])) {
        return ReflectApply(mapGet, hostFunctionCache, [id]);
      }
      const fn = function (...args) {
        const encodedArgs = encode(args, true);  // the argument list is no level of depth
        let reply;
        try {
          hookCalls[0] += 1;
          try {
            reply = callPython('call', id, encodedArgs.v, encodedArgs.t);
          } finally {
            hookCalls[0] -= 1;
          }
        } catch (err) {
          // dukpy saw a stop signal around the callback and threw a catchable
          // InternalError: "interrupted", or "Error while calling Python
          // Function ...: ScriptInterrupted(...)" when the signal's handler ran
          // in dukpy's own tail of the callback. The worker re-delivers the
          // stop: wait for the engine's interrupt hook, where no catch sees it.
          // The hook lives in the bridge's own realm (workers/engine.py): what it
          // throws is made there, and is remade here before any script sees it.
          if (err === null || typeof err !== 'object') throw err;  // null: out of memory
          const message = readInherited(err, 'message');
          if (stoppedInCallback(message)) {
            for (;;) { /* stopped by the engine's interrupt hook */ }
          }
          throw hookError(readInherited(err, 'name'), message);
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
        const err = decode(reply.e);
        // A host failure's stack ends with the host function's own frame
        // (isolate.hostcalls): the frames of the JS that called it follow.
        const stack = err !== null && typeof err === 'object' ? err.stack : undefined;
        if (typeof stack === 'string' && stack.length >= HOST_FRAME.length &&
            ReflectApply(StringIndexOf, stack, [HOST_FRAME, stack.length - HOST_FRAME.length]) >= 0) {
          defineValue(err, 'stack', stack + '\n' + stackText().cleanStack(ownStack()), false);
        }
        throw err;
      };
      ObjectDefineProperty(fn, 'name', { __proto__: null, value: name || '' });
      ReflectApply(weakMapSet, hostFunctionIds, [fn, id]);
      ReflectApply(mapSet, hostFunctionCache, [id, fn]);
      return fn;
    }

    // ---- values: JS value <-> tagged JSON ----------------------------------
    // Containers (arrays, plain objects, Maps, Sets, Errors) are numbered in
    // pre-order; a container met again becomes {TAG: 'R', i: number}. Maps,
    // Sets, Errors and objects with an own TAG key are arrays whose first item
    // is their tag object ([{TAG: 'm'}, k1, v1, ...]), so every container is one
    // level of JSON, as on the wire.
    //
    // Both walks use an explicit stack: the engine's own stack would give out
    // at a few hundred levels of recursion. Neither calls anything a script can
    // replace (only intrinsics captured here, no iterator protocol, no
    // instanceof, no setters: outputs are built without prototypes, see
    // outputArray for the one exception), so what user code runs during an
    // encode is only what reading the value itself runs: getters and Proxy
    // traps, and the stack cleanup of an Error (cleanStack uses String methods).
    // In passive mode (the mirror of the globals) not even getters: accessor
    // properties are reported as {TAG: 'a'}, not called.

    // Mirrors protocol.MAX_VALUE_DEPTH: a value leaves the engine only if its
    // containers nest at most this deep; a deeper result, thrown value or host
    // call argument becomes the 'x' tag (the worker answers UNENCODABLE, a host
    // call throws), and the mirror hands a deeper part over as a handle.
    const MAX_VALUE_DEPTH = 500;
    // See askUnshared: below this many containers the Map costs less than the worker's check.
    const UNSHARED_CHECK_AT = 1024;
    // Mirrors protocol.MAX_DECODE_DEPTH: the host refuses deeper values first.
    const MAX_DECODE_DEPTH = MAX_VALUE_DEPTH + 8;
    // Numbers the walk passes as they are: finite, not -0, within ±(2^53 − 1).
    const MAX_SAFE = 9007199254740991;

    // Called per item: uncurried (a bound `call`, faster than Reflect.apply).
    // The rest are called with Reflect.apply: binding costs every context
    // creation time.
    const FunctionCall = Function.prototype.call;
    // The bridge throws with the constructors in errorCtors (a script may replace the
    // globals). Few names here: each distinct name is an atom of every runtime.
    const FunctionCtor = Function;
    const uncurry = (fn) => ReflectApply(Function.prototype.bind, FunctionCall, [fn]);
    const getterOf = (proto, key) => ObjectGetOwnPropertyDescriptor(proto, key).get;
    const ObjectSetPrototypeOf = Object.setPrototypeOf;
    const ArrayPrototype = Array.prototype;
    const hasOwnCall = uncurry(hasOwn);
    const mapGetCall = uncurry(mapGet), mapSetCall = uncurry(mapSet), setAddCall = uncurry(setAdd);
    const charCodeAt = uncurry(String.prototype.charCodeAt);
    const mapForEach = Map.prototype.forEach, setForEach = Set.prototype.forEach;
    const mapSize = getterOf(Map.prototype, 'size'), setSize = getterOf(Set.prototype, 'size');
    // RegExp.prototype.flags reads the flag properties (a script may redefine
    // them); each flag's own getter reads the regexp's internal flags.
    const REGEXP_FLAGS = 'dgimsuvy';
    const REGEXP_FLAG_NAMES = ['hasIndices', 'global', 'ignoreCase', 'multiline', 'dotAll', 'unicode', 'unicodeSets', 'sticky'];
    const regexpFlagGetters = [];
    for (let i = 0; i < REGEXP_FLAG_NAMES.length; i++) {
      const d = ObjectGetOwnPropertyDescriptor(RegExp.prototype, REGEXP_FLAG_NAMES[i]);
      regexpFlagGetters[i] = d === undefined ? undefined : d.get;
    }
    const abByteLength = getterOf(ArrayBuffer.prototype, 'byteLength');
    const taBuffer = getterOf(TypedArrayProto, 'buffer'), taByteOffset = getterOf(TypedArrayProto, 'byteOffset');
    const taByteLength = getterOf(TypedArrayProto, 'byteLength');
    const dvBuffer = getterOf(DataView.prototype, 'buffer'), dvByteOffset = getterOf(DataView.prototype, 'byteOffset');
    const dvByteLength = getterOf(DataView.prototype, 'byteLength');
    const symbolDescription = getterOf(Symbol.prototype, 'description');
    const bigintToString = BigInt.prototype.toString;
    const StringSlice = String.prototype.slice;
    const regexpExec = RegExp.prototype.exec;
    const weakMapGet = WeakMap.prototype.get, weakMapHas = WeakMap.prototype.has, weakMapSet = WeakMap.prototype.set;
    const ErrorIsError = typeof Error.isError === 'function' ? Error.isError : null;
    const DatePrototype = Date.prototype, RegExpPrototype = RegExp.prototype;
    const MapPrototype = Map.prototype, SetPrototype = Set.prototype;
    const ArrayBufferPrototype = ArrayBuffer.prototype, ErrorPrototype = Error.prototype;
    const PromisePrototype = Promise.prototype, TypeErrorPrototype = TypeError.prototype;
    const AggregateErrorCtor = AggregateError;
    const HOST_FRAME = ' (<host>)';  // how the last line of a host failure's stack ends

    // An empty list AggregateError can iterate without the script's Array iterator.
    const NO_ERRORS = { __proto__: null, [Symbol.iterator]() {
      return { __proto__: null, next() { return { __proto__: null, done: true, value: undefined }; } };
    } };
    const MAP_HEAD = { __proto__: null, [TAG]: 'm' };
    const SET_HEAD = { __proto__: null, [TAG]: 'S' };
    const OBJECT_HEAD = { __proto__: null, [TAG]: 'O' };

    // An array with no prototype: filled by index without meeting a setter a
    // script put on Array.prototype, and serialized without its toJSON.
    function newList() {
      const list = [];
      ObjectSetPrototypeOf(list, null);
      return list;
    }

    // The snapshot globalsSnapshot made last: encoding it is passive.
    let mirrorSnapshot = null;
    // How many containers the latest encode opened (see encodeReply).
    let eLastCount = 0;

    // ---- parts of the bridge ----------------------------------------------------
    // Code most contexts never run is kept out of the bridge's bytecode, which every
    // context reads at its creation: each such part (bridge_<name>.js) is one function
    // of the intrinsics it uses, captured here before any user code ran. The V8 worker
    // hands every part over at installation (`parts`); the QuickJS worker reads a
    // part's bytecode into this realm when asked (workers/engine.py, _load_part) and
    // leaves the function in the stash. Reading it runs nothing but the making of that
    // function, so it may happen after user code ran.
    function bridgePart(name) {
      if (parts !== undefined) return parts[name];
      let answer;
      hookCalls[0] += 1;
      try {
        answer = callPython('part', name);
      } finally {
        hookCalls[0] -= 1;
      }
      if (answer !== null && typeof answer === 'object' && answer.abort === true) {
        // A stop arrived meanwhile: wait for it here, where no catch can see it (see askUnshared).
        for (;;) { /* stopped by the engine's interrupt hook */ }
      }
      const made = stash.part;
      stash.part = undefined;
      if (answer !== true) throw made;  // what reading it threw (no memory left, most likely)
      return made;
    }

    // The encoder (JS value -> tagged JSON) and, below, the decoder are functions of
    // their own, called once, here: their closures find the state they share in
    // their own small frames (see bridgeBody on QuickJS's search of a frame's
    // variables).
    const encoder = (function encoderMade() {
      // Frame kinds of encode's stack.
      const E_ARRAY = 0, E_OBJECT = 1, E_PAIRS = 2, E_LIST = 3, E_ERROR = 4;

      // The state of the encode in progress. encode saves and restores it: a
      // getter it runs may call a host function, whose arguments are encoded
      // meanwhile. Module-level, so that an encode makes no closures.
      let eSeen = null, eCounter = 0, eTagged = false, eRefs = false, eStopped = false;
      let ePassive = false, eAccessor = null;
      // The root of the encode in progress, and whether the worker found that no object
      // is met twice in it (then containers need no entry in eSeen: see askUnshared).
      // eLimit: as many containers as the worker's text could hold; a walk that opens more
      // met a value that changed after the check (a getter made it), and stops there.
      let eRoot = undefined, eUnshared = false, eLimit = 0, eChanged = false;
      // eRaw: the root is a tree of plain data that JSON.stringify writes exactly as the
      // walk would (see plainTree): the walk stops, and the reply holds the root itself.
      let eRootDepth = 0, eRaw = false;
      // Whether output arrays may be plain arrays (see outputArray): undefined until asked.
      let ePlainArrays;
      // The container encodeItem just met, for the walk to descend into.
      let eOpen = false, eoKind = 0, eoSrc = null, eoKeys = null, eoN = 0, eoOut = null;

      // `wrapped`: the root is a container of values (a host call's argument
      // list, the mirror) that does not count as a level of depth.
      function encode(root, wrapped) {
        eLastCount = 0;  // a primitive opens no container
        switch (typeof root) {
          case 'string': case 'boolean': return { v: root, t: false, r: false };
          case 'number':
            if (root === root && root !== Infinity && root !== -Infinity && (root !== 0 || 1 / root > 0)) {
              return { v: root, t: false, r: false };
            }
            break;
          default:
            if (root === null) return { v: null, t: false, r: false };
        }
        const passive = root === mirrorSnapshot;
        if (passive) mirrorSnapshot = null;
        const sSeen = eSeen, sCounter = eCounter, sTagged = eTagged, sRefs = eRefs, sStopped = eStopped;
        const sPassive = ePassive, sAccessor = eAccessor, sOpen = eOpen, sPlainArrays = ePlainArrays;
        const sRoot = eRoot, sUnshared = eUnshared, sLimit = eLimit, sChanged = eChanged;
        const sRootDepth = eRootDepth, sRaw = eRaw;
        eSeen = new MapCtor();
        eCounter = 0;
        eRoot = root;
        eUnshared = eChanged = eRaw = false;
        eRootDepth = wrapped || passive ? -1 : 0;
        eTagged = eRefs = eStopped = eOpen = false;
        ePassive = passive;
        eAccessor = null;
        ePlainArrays = undefined;
        try {
          const out = encodeWalk(root, eRootDepth);
          eLastCount = eCounter;
          return out;
        } finally {
          eSeen = sSeen; eCounter = sCounter; eTagged = sTagged; eRefs = sRefs; eStopped = sStopped;
          ePassive = sPassive; eAccessor = sAccessor; eOpen = sOpen; ePlainArrays = sPlainArrays;
          eRoot = sRoot; eUnshared = sUnshared; eLimit = sLimit; eChanged = sChanged;
          eRootDepth = sRootDepth; eRaw = sRaw;
        }
      }

      function encodeWalk(root, rootDepth) {
        const result = encodeItem(root, rootDepth);
        if (eStopped) return stoppedEarly();
        if (!eOpen) return { v: result, t: eTagged || eRefs, r: eRefs };
        // The stack holds 7 slots per frame: kind, source, keys, next index, length, output, depth.
        const stack = newList();
        let sp = 0;
        let kind = eoKind, src = eoSrc, keys = eoKeys, i = 0, n = eoN, out = eoOut, depth = rootDepth + 1;
        const passive = ePassive;
        const holesHooked = protoIndexes();
        eOpen = false;
        for (;;) {
          if (kind === E_OBJECT && !passive) {
            // The common case, in a loop of its own.
            while (i < n) {
              const key = keys[i++];
              const v = src[key];
              const t = typeof v;
              if (t === 'string' || t === 'boolean' || (t === 'number' && v - v === 0 && v !== 0 && v <= MAX_SAFE && v >= -MAX_SAFE)) {
                out[key] = v;
                continue;
              }
              out[key] = encodeItem(v, depth);
              if (eStopped) return stoppedEarly();
              if (eOpen) break;
            }
          } else if (kind === E_ARRAY && !passive && !holesHooked) {
            while (i < n) {
              const v = src[i++];
              const t = typeof v;
              if (t === 'string' || t === 'boolean' || (t === 'number' && v - v === 0 && v !== 0 && v <= MAX_SAFE && v >= -MAX_SAFE)) {
                out[i - 1] = v;
                continue;
              }
              out[i - 1] = encodeItem(v, depth);
              if (eStopped) return stoppedEarly();
              if (eOpen) break;
            }
          } else if ((kind === E_OBJECT || kind === E_ARRAY) && passive) {
            // The mirror's reads, as readPassive makes them, in a loop of their own.
            const isArray = kind === E_ARRAY;
            while (i < n) {
              const key = isArray ? i : keys[i];
              i++;
              const d = ObjectGetOwnPropertyDescriptor(src, key);
              let v;
              if (d !== undefined) {
                if (hasOwnCall(d, 'value')) {
                  v = d.value;
                  const t = typeof v;
                  if (t === 'string' || t === 'boolean' || (t === 'number' && v - v === 0 && v !== 0 && v <= MAX_SAFE && v >= -MAX_SAFE)) {
                    out[key] = v;
                    continue;
                  }
                } else {
                  eAccessor = d;
                }
              }
              out[key] = encodeItem(v, depth);
              if (eStopped) return stoppedEarly();
              if (eOpen) break;
            }
          } else {
            while (i < n) {
              let v, key;
              if (kind === E_ARRAY) {
                v = passive ? readPassive(src, i) : hasOwnCall(src, i) ? src[i] : undefined;
              } else if (kind === E_LIST) {
                v = src[i];
              } else {
                key = keys[i];
                if (kind === E_ERROR) {
                  if (key === 'stack' || key === 'message') { i++; continue; }
                  try {
                    v = passive ? readPassive(src, key) : src[key];
                  } catch (e) { i++; continue; }  // an unreadable prop is left out
                } else {
                  v = passive ? readPassive(src, key) : src[key];
                }
              }
              i++;
              const r = encodeItem(v, depth);
              if (eStopped) return stoppedEarly();
              if (kind === E_ARRAY) out[i - 1] = r;
              else if (kind === E_LIST) out[i] = r;   // after the Map's or Set's head
              else if (kind === E_OBJECT) out[key] = r;
              else { const at = out.length; out[at] = key; out[at + 1] = r; }
              if (eOpen) break;
            }
          }
          if (eOpen) {
            stack[sp] = kind; stack[sp + 1] = src; stack[sp + 2] = keys; stack[sp + 3] = i; stack[sp + 4] = n;
            stack[sp + 5] = out; stack[sp + 6] = depth;
            sp += 7;
            kind = eoKind; src = eoSrc; keys = eoKeys; i = 0; n = eoN; out = eoOut; depth++;
            eOpen = false;
            continue;
          }
          if (sp === 0) break;
          sp -= 7;
          kind = stack[sp]; src = stack[sp + 1]; keys = stack[sp + 2]; i = stack[sp + 3]; n = stack[sp + 4];
          out = stack[sp + 5]; depth = stack[sp + 6];
        }
        return { v: result, t: eTagged || eRefs, r: eRefs };
      }

      // Whether no object is met twice in the value being encoded (no shared reference, no
      // cycle): asked of the worker once an active encode has opened UNSHARED_CHECK_AT
      // containers. In QuickJS a Map keyed by objects hashes their addresses poorly (a
      // set or get costs 1-3 us at 200k entries: half of a large value's walk); the
      // worker answers with two passes of JS_WriteObject, in C (workers/engine.py,
      // EngineContext._root_unshared). Not asked in a passive encode (the mirror: those
      // passes read array elements with their getters, which the mirror never runs), nor
      // when a script gave Array.prototype or Object.prototype an index property (a hole
      // would be read from there).
      function askUnshared() {
        if (ePassive || !quickjsWorker || protoIndexes()) return 0;
        stash.checkRoot = eRoot;
        let answer;
        try {
          hookCalls[0] += 1;
          try {
            answer = callPython('unshared');
          } finally {
            hookCalls[0] -= 1;
            stash.checkRoot = undefined;
          }
        } catch (err) {
          return 0;  // no room for the answer: the Map it is
        }
        if (answer !== null && typeof answer === 'object' && answer.abort === true) {
          // A stop arrived while the worker looked (a getter it ran may loop): wait for it
          // here, where no catch can see it (as a host function does).
          for (;;) { /* stopped by the engine's interrupt hook */ }
        }
        return typeof answer === 'number' && answer > 0 ? answer : 0;
      }

      // Whether JSON.stringify of `root` writes what the walk's copy of it would, running no
      // code of the script: asked once the worker found that no object is met twice in it
      // and that it holds no Proxy, function or enumerable accessor of an object (see
      // askUnshared). Then it is enough that every object is a plain object or an array
      // (prototypes Object.prototype or null, Array.prototype) with no own TAG or toJSON
      // key, neither prototype has a toJSON, no array has a hole, and every other value is
      // a string, a boolean, null or a number JSON writes exactly (finite, not -0, safe).
      // The reply then holds the script's value, which the reply's JSON.stringify writes.
      // (An array element's getter, which the check ran, runs again here and there: a
      // getter that answers differently each time changes only the plain data it gives.)
      // `limit`: as eLimit (more containers than the check's text could hold: a getter made
      // the value grow since, and the walk says so).
      function plainTree(root, rootDepth, limit) {
        if (ObjectGetOwnPropertyDescriptor(ObjectPrototype, 'toJSON') !== undefined ||
            ObjectGetOwnPropertyDescriptor(ArrayPrototype, 'toJSON') !== undefined) return false;
        const stack = newList();
        stack[0] = root;
        stack[1] = rootDepth;
        let sp = 2, containers = 1;
        while (sp > 0) {
          const depth = stack[sp - 1] + 1, v = stack[sp - 2];
          sp -= 2;
          if (depth > MAX_VALUE_DEPTH) return false;
          let keys = null, n;
          if (ArrayIsArray(v)) {
            if (ObjectGetPrototypeOf(v) !== ArrayPrototype) return false;
            n = v.length;
          } else {
            const proto = ObjectGetPrototypeOf(v);
            if ((proto !== ObjectPrototype && proto !== null) ||
                ObjectGetOwnPropertyDescriptor(v, TAG) !== undefined ||
                ObjectGetOwnPropertyDescriptor(v, 'toJSON') !== undefined) return false;
            keys = ObjectKeys(v);
            n = keys.length;
          }
          for (let i = 0; i < n; i++) {
            const x = keys === null ? v[i] : v[keys[i]];
            const t = typeof x;
            if (t === 'string' || t === 'boolean') continue;
            if (t === 'number') {
              if (x - x === 0 && (x !== 0 ? x <= MAX_SAFE && x >= -MAX_SAFE : 1 / x > 0)) continue;
              return false;
            }
            if (t !== 'object') return false;  // undefined (a hole too), a bigint, a symbol
            if (x === null) continue;
            if (++containers > limit) return false;
            stack[sp] = x;
            stack[sp + 1] = depth;
            sp += 2;
          }
        }
        return true;
      }

      // An array for encoded items: without a prototype, so that neither filling
      // it nor serializing it (JS_JSONStringify, in the bridge's realm) meets a
      // setter or toJSON a script gave Array.prototype or Object.prototype.
      function outputArray() {
        return newList();
      }
      // Whether reading an array's hole would find an index property a script gave
      // Array.prototype or Object.prototype (own keys list indices first): then
      // arrays are read own property by own property. Asked once per encode.
      function protoIndexes() {
        if (ePlainArrays === undefined) {
          const a = ReflectOwnKeys(ArrayPrototype)[0], o = ReflectOwnKeys(ObjectPrototype)[0];
          ePlainArrays = !isIndexKey(a) && !isIndexKey(o);
        }
        return !ePlainArrays;
      }
      function isIndexKey(key) {
        return typeof key === 'string' && key !== '' && +key >>> 0 === +key && StringCtor(+key) === key;
      }

      // What an encode that stopped early gives: the root itself (eRaw: plainTree found it
      // plain, JSON.stringify writes it), else a refusal (too deep, or grown since checked).
      function stoppedEarly() {
        if (eRaw) return { v: eRoot, t: false, r: false };
        const m = eChanged
          ? 'isolate: the value grew while it was read (a getter it ran made objects in it shared or cyclic ' +
            'after they were checked); read it again'
          : 'isolate: a value nested more than ' + MAX_VALUE_DEPTH +
            ' levels deep (arrays, objects, Maps, Sets, Errors) cannot leave JavaScript (protocol.MAX_VALUE_DEPTH)';
        return { v: { __proto__: null, [TAG]: 'x', m }, t: true, r: false };
      }

      // A property as the mirror reads it: a data property's value, or (for an
      // accessor) undefined with eAccessor set, which encodeItem reports.
      function readPassive(obj, key) {
        const d = ObjectGetOwnPropertyDescriptor(obj, key);
        if (d === undefined) return undefined;
        if (hasOwnCall(d, 'value')) return d.value;
        eAccessor = d;
        return undefined;
      }
      // A data property found along the prototype chain, without calling accessors.
      function readInherited(obj, key) {
        for (let o = obj, steps = 0; o !== null && steps < 1000; o = ObjectGetPrototypeOf(o), steps++) {
          const d = ObjectGetOwnPropertyDescriptor(o, key);
          if (d !== undefined) return hasOwnCall(d, 'value') ? d.value : undefined;
        }
        return undefined;
      }
      function className(proto) {
        let cls = 'Object';
        try {
          const ctor = ePassive ? (proto === null ? undefined : readInherited(proto, 'constructor'))
            : proto && proto.constructor;
          const name = typeof ctor !== 'function' ? undefined : ePassive ? readInherited(ctor, 'name') : ctor.name;
          if (typeof name === 'string' && name) cls = name;
        } catch (e) { /* a getter threw: keep 'Object' */ }
        return cls;
      }
      function handleTag(kind, v, cls, name) {
        eTagged = true;
        return { __proto__: null, [TAG]: 'h', k: kind, i: newHandle(v), c: cls, n: name };
      }
      // A container: numbered, and opened for the walk to fill `out`. Past the
      // depth limit the mirror hands the container over by reference, anything
      // else refuses the whole value.
      function openContainer(v, depth, kind, src, keys, n, out) {
        if (depth >= MAX_VALUE_DEPTH) {
          if (!ePassive) {
            eStopped = true;
            return null;
          }
          return handleTag('object', v, ArrayIsArray(v) ? 'Array' : className(ObjectGetPrototypeOf(v)), '');
        }
        if (eUnshared) {
          if (++eCounter > eLimit) {
            eStopped = eChanged = true;
            return null;
          }
        } else {
          mapSetCall(eSeen, v, eCounter++);
          if (eCounter === UNSHARED_CHECK_AT) {
            const size = askUnshared();
            eUnshared = size > 0;
            eLimit = size / 2;  // each object takes two bytes of it at least (a tag and a count)
            if (eUnshared && plainTree(eRoot, eRootDepth, eLimit)) {
              eStopped = eRaw = true;  // ends the walk: see stoppedEarly
              return null;
            }
          }
        }
        eOpen = true;
        eoKind = kind; eoSrc = src; eoKeys = keys; eoN = n; eoOut = out;
        return out;
      }
      function bytesToLatin1(bytes, length) {
        const CHUNK = 8192;
        let out = '';
        for (let i = 0; i < length; i += CHUNK) {
          const size = MathMin(CHUNK, length - i);
          const piece = new Uint8ArrayCtor(ReflectApply(taBuffer, bytes, []), ReflectApply(taByteOffset, bytes, []) + i, size);
          // fromCharCode.apply reads `length`: an own property, not the script's getter.
          ObjectDefineProperty(piece, 'length', { __proto__: null, value: size });
          out += ReflectApply(StringFromCharCode, null, piece);
        }
        return out;
      }

      // One value: a tag or a primitive, or a container opened for the walk.
      function encodeItem(v, depth) {
        switch (typeof v) {
          case 'string':
          case 'boolean':
            return v;
          case 'number':
            if (v !== v) { eTagged = true; return { __proto__: null, [TAG]: 'n', v: 'NaN' }; }
            if (v === Infinity) { eTagged = true; return { __proto__: null, [TAG]: 'n', v: 'Infinity' }; }
            if (v === -Infinity) { eTagged = true; return { __proto__: null, [TAG]: 'n', v: '-Infinity' }; }
            if (v === 0 && 1 / v < 0) { eTagged = true; return { __proto__: null, [TAG]: 'n', v: '-0' }; }
            // JSON writes an integral number up to 1e21 in digits: Python would read an int
            // past 2^53 that is not the number's value. Marked tagged, the worker reads the
            // value (no tags in it) and its encoder sends such ints as the float they are.
            if (v > MAX_SAFE || v < -MAX_SAFE) eTagged = true;
            return v;
          case 'undefined':
            eTagged = true;
            if (eAccessor !== null) {
              const d = eAccessor;
              eAccessor = null;
              return { __proto__: null, [TAG]: 'a', g: d.get !== undefined, s: d.set !== undefined };
            }
            return { __proto__: null, [TAG]: 'u' };
          case 'bigint':
            eTagged = true;
            return { __proto__: null, [TAG]: 'b', v: ReflectApply(bigintToString, v, [16]) };
          case 'symbol': {
            eTagged = true;
            const key = SymbolKeyFor(v);
            if (key !== undefined) return { __proto__: null, [TAG]: 'y', v: key, g: true };
            const description = ReflectApply(symbolDescription, v, []);
            return { __proto__: null, [TAG]: 'y', v: description === undefined ? null : description };
          }
          case 'function': {
            const hostId = ReflectApply(weakMapGet, hostFunctionIds, [v]);
            if (hostId !== undefined) { eTagged = true; return { __proto__: null, [TAG]: 'H', i: hostId }; }
            let name = '';
            try {
              const n = ePassive ? readInherited(v, 'name') : v.name;
              if (typeof n === 'string') name = n;
            } catch (e) { /* getter threw */ }
            if (!ReflectApply(weakMapHas, functionOrigin, [v]) && current.filename !== undefined) {
              ReflectApply(weakMapSet, functionOrigin, [v, current]);
            }
            return handleTag('function', v, 'Function', name);
          }
          default:
            break;
        }
        if (v === null) return null;
        const known = eUnshared ? undefined : mapGetCall(eSeen, v);
        if (known !== undefined) {
          eRefs = true;
          return { __proto__: null, [TAG]: 'R', i: known };
        }
        if (ArrayIsArray(v)) return openContainer(v, depth, E_ARRAY, v, null, v.length, outputArray());
        const proto = ObjectGetPrototypeOf(v);
        if (proto === ObjectPrototype || proto === null) {
          const keys = ObjectKeys(v);
          if (ObjectGetOwnPropertyDescriptor(v, TAG) !== undefined) {  // own TAG key (one native call)
            eTagged = true;
            const out = newList();
            out[0] = OBJECT_HEAD;
            return openContainer(v, depth, E_PAIRS, v, keys, keys.length, out);
          }
          return openContainer(v, depth, E_OBJECT, v, keys, keys.length, { __proto__: null });
        }
        if (ArrayBufferIsView(v)) {
          eTagged = true;
          const kind = ReflectApply(typedArrayTag, v, []);
          const bytes = kind === undefined
            ? new Uint8ArrayCtor(ReflectApply(dvBuffer, v, []), ReflectApply(dvByteOffset, v, []), ReflectApply(dvByteLength, v, []))
            : new Uint8ArrayCtor(ReflectApply(taBuffer, v, []), ReflectApply(taByteOffset, v, []),
              ReflectApply(taByteLength, v, []));
          return { __proto__: null, [TAG]: 't', k: kind === undefined ? 'DataView' : kind, v: bytesToLatin1(bytes, ReflectApply(taByteLength, bytes, [])) };
        }
        // What kind of object: the intrinsic prototype it inherits from (as
        // instanceof, without a script's Symbol.hasInstance), confirmed by the
        // intrinsic that needs the internal slot (a forged prototype chain
        // throws there, and the object is handed over as a handle).
        let base = null;
        for (let o = proto, steps = 0; o !== null && steps < 1000; o = ObjectGetPrototypeOf(o), steps++) {
          if (o === DatePrototype || o === RegExpPrototype || o === MapPrototype || o === SetPrototype ||
              o === ArrayBufferPrototype || o === ErrorPrototype || o === PromisePrototype) {
            base = o;
            break;
          }
        }
        if (base === ErrorPrototype || (ErrorIsError !== null && ErrorIsError(v))) {
          eTagged = true;
          const out = newList();
          out[0] = errorHead(v, ePassive);
          const keys = ObjectKeys(v);
          return openContainer(v, depth, E_ERROR, v, keys, keys.length, out);
        }
        try {
          if (base === DatePrototype) {
            const t = ReflectApply(dateGetTime, v, []);
            eTagged = true;
            return { __proto__: null, [TAG]: 'd', v: t === t ? t : null };
          }
          if (base === RegExpPrototype && v !== RegExpPrototype) {
            const s = ReflectApply(regexpSource, v, []);
            let f = '';
            for (let i = 0; i < regexpFlagGetters.length; i++) {
              const flag = regexpFlagGetters[i];
              if (flag !== undefined && ReflectApply(flag, v, [])) f += REGEXP_FLAGS[i];
            }
            eTagged = true;
            return { __proto__: null, [TAG]: 'r', s, f };
          }
          if (base === MapPrototype) {
            ReflectApply(mapSize, v, []);
            const list = newList();
            let j = 0;
            ReflectApply(mapForEach, v, [(value, key) => { list[j++] = key; list[j++] = value; }]);
            eTagged = true;
            const out = newList();
            out[0] = MAP_HEAD;
            return openContainer(v, depth, E_LIST, list, null, j, out);
          }
          if (base === SetPrototype) {
            ReflectApply(setSize, v, []);
            const list = newList();
            let j = 0;
            ReflectApply(setForEach, v, [(value) => { list[j++] = value; }]);
            eTagged = true;
            const out = newList();
            out[0] = SET_HEAD;
            return openContainer(v, depth, E_LIST, list, null, j, out);
          }
          if (base === ArrayBufferPrototype) {
            const length = ReflectApply(abByteLength, v, []);
            eTagged = true;
            return { __proto__: null, [TAG]: 'A', v: bytesToLatin1(new Uint8ArrayCtor(v), length) };
          }
        } catch (e) {
          // A forged prototype chain (the intrinsic found no internal slot): a handle below.
          if (e === null || typeof e !== 'object' || ObjectGetPrototypeOf(e) !== TypeErrorPrototype) throw e;
        }
        if (base === PromisePrototype) {
          if (!ePassive) handOver(v);
          return handleTag('promise', v, 'Promise', '');
        }
        return handleTag('object', v, className(proto), '');
      }

      // An Error's name, message and (Node-shaped) stack. Passive: data
      // properties only, accessors count as absent.
      function errorHead(err, passive) {
        let name = 'Error', message = '', stack = '';
        if (passive) {
          const n = readInherited(err, 'name'), m = readInherited(err, 'message'), s = readInherited(err, 'stack');
          if (n !== undefined && (typeof n !== 'object' || n === null) && typeof n !== 'function') name = StringCtor(n);
          if (m !== undefined && (typeof m !== 'object' || m === null) && typeof m !== 'function') message = StringCtor(m);
          if (typeof s === 'string') stack = s;
        } else {
          try { name = StringCtor(err.name); } catch (e) { /* keep default */ }
          try { message = StringCtor(err.message); } catch (e) { /* keep default */ }
          try { stack = typeof err.stack === 'string' ? err.stack : ''; } catch (e) { /* keep default */ }
        }
        const st = stackText();
        if (!st.displayedStack(stack)) stack = st.nodeStyleStack(name, message, st.cleanStack(stack));
        return { __proto__: null, [TAG]: 'e', name, message, stack };
      }

      function latin1ToBytes(s) {
        const bytes = new Uint8ArrayCtor(s.length);
        for (let i = 0; i < s.length; i++) bytes[i] = charCodeAt(s, i);
        return bytes;
      }
      return { __proto__: null, encode, readInherited, latin1ToBytes };
    })();
    const encode = encoder.encode, readInherited = encoder.readInherited;
    const latin1ToBytes = encoder.latin1ToBytes;

    function defineValue(obj, key, value, enumerable) {
      ObjectDefineProperty(obj, key, { __proto__: null, value, writable: true, enumerable, configurable: true });
    }

    const decoder = (function decoderMade() {
      // Frame kinds of decode's stack.
      const D_ARRAY = 0, D_OBJECT = 1, D_PAIRS = 2, D_MAP = 3, D_SET = 4, D_ERROR = 5;

      // The state of the decode in progress, and the container decodeItem just
      // met. Saved and restored like encode's: an Error constructor may run a
      // script's Error.prepareStackTrace, which may call a host function.
      let dTable = null;
      let dOpen = false, doKind = 0, doSrc = null, doFirst = 0, doN = 0, doOut = null, doKeys = null;

      // ---- decoding: tagged JSON -> JS value ---------------------------------
      // The input is JSON the bridge parsed itself; outputs are built without
      // prototypes (no setter of a script's can intercept the filling) and get
      // theirs once complete.
      function decode(root) {
        if (root === null || typeof root !== 'object') return root;
        const sTable = dTable, sOpen = dOpen;
        dTable = newList();
        dOpen = false;
        try {
          return decodeWalk(root);
        } finally {
          dTable = sTable;
          dOpen = sOpen;
        }
      }

      function decodeWalk(root) {
        const result = decodeItem(root, 0);
        if (!dOpen) return result;
        // The stack holds 8 slots per frame: kind, source, next index, length, output, depth, keys, pending Map key.
        const stack = newList();
        let sp = 0;
        let kind = doKind, src = doSrc, i = doFirst, n = doN, out = doOut, depth = 1, keys = doKeys, pending;
        dOpen = false;
        for (;;) {
          while (i < n) {
            let key, v;
            if (kind === D_OBJECT) {
              key = keys[i];
              v = src[key];
              i++;
            } else if (kind === D_PAIRS || kind === D_ERROR) {
              key = src[i];
              v = src[i + 1];
              i += 2;
            } else {
              v = src[i];
              i++;
            }
            const r = v === null || typeof v !== 'object' ? v : decodeItem(v, depth);
            if (kind === D_ARRAY) out[i - 1] = r;
            else if (kind === D_OBJECT || kind === D_PAIRS) out[key] = r;
            else if (kind === D_MAP) {
              if (i % 2 === 0) pending = r;
              else mapSetCall(out, pending, r);
            } else if (kind === D_SET) setAddCall(out, r);
            else defineValue(out, key, r, true);
            if (dOpen) {
              stack[sp] = kind; stack[sp + 1] = src; stack[sp + 2] = i; stack[sp + 3] = n; stack[sp + 4] = out;
              stack[sp + 5] = depth; stack[sp + 6] = keys; stack[sp + 7] = pending;
              sp += 8;
              kind = doKind; src = doSrc; i = doFirst; n = doN; out = doOut; keys = doKeys; depth++;
              dOpen = false;
            }
          }
          // The container is complete: give it its prototype.
          if (kind === D_ARRAY) ObjectSetPrototypeOf(out, ArrayPrototype);
          else if (kind === D_OBJECT || kind === D_PAIRS) ObjectSetPrototypeOf(out, ObjectPrototype);
          if (sp === 0) break;
          sp -= 8;
          kind = stack[sp]; src = stack[sp + 1]; i = stack[sp + 2]; n = stack[sp + 3]; out = stack[sp + 4];
          depth = stack[sp + 5]; keys = stack[sp + 6]; pending = stack[sp + 7];
        }
        return result;
      }

      function openDecoded(kind, src, first, n, out, keys) {
        dTable[dTable.length] = out;
        dOpen = true;
        doKind = kind; doSrc = src; doFirst = first; doN = n; doOut = out; doKeys = keys;
        return out;
      }

      function tooDeepToDecode() {
        return new errorCtors.RangeError('isolate: value nested more than ' + MAX_DECODE_DEPTH + ' levels deep');
      }

      // One tagged value: a primitive, a leaf tag, or a container opened for the walk.
      function decodeItem(v, depth) {
        if (ArrayIsArray(v)) {
          if (depth >= MAX_DECODE_DEPTH) throw tooDeepToDecode();
          const n = v.length;
          const head = n ? v[0] : null;
          const t = head !== null && typeof head === 'object' && hasOwnCall(head, TAG) ? head[TAG] : null;
          if (t === 'm') return openDecoded(D_MAP, v, 1, n, new MapCtor(), null);
          if (t === 'S') return openDecoded(D_SET, v, 1, n, new SetCtor(), null);
          if (t === 'O') return openDecoded(D_PAIRS, v, 1, n, { __proto__: null }, null);
          if (t === 'e') {
            const name = own(head, 'name'), message = own(head, 'message'), stack = own(head, 'stack');
            const known = typeof name === 'string' && hasOwnCall(errorCtors, name);
            const Ctor = known ? errorCtors[name] : ErrorCtor;
            const err = Ctor === AggregateErrorCtor ? new Ctor(NO_ERRORS, message) : new Ctor(message);
            if (!known) defineValue(err, 'name', name, false);
            if (stack) defineValue(err, 'stack', stack, false);
            return openDecoded(D_ERROR, v, 1, n, err, null);
          }
          return openDecoded(D_ARRAY, v, 0, n, newList(), null);
        }
        if (ObjectGetOwnPropertyDescriptor(v, TAG) === undefined) {
          if (depth >= MAX_DECODE_DEPTH) throw tooDeepToDecode();
          const keys = ObjectKeys(v);
          return openDecoded(D_OBJECT, v, 0, keys.length, { __proto__: null }, keys);
        }
        // Read own properties only: the request was parsed in this realm, and a
        // field left out must not be looked up on the script's Object.prototype.
        switch (v[TAG]) {
          case 'u': return undefined;
          case 'n': return own(v, 'v') === '-0' ? -0 : +own(v, 'v');
          case 'b': {
            const s = StringCtor(own(v, 'v'));
            return charCodeAt(s, 0) === 45 ? -BigIntCtor('0x' + ReflectApply(StringSlice, s, [1])) : BigIntCtor('0x' + s);
          }
          case 'y': {
            const d = own(v, 'v');
            return own(v, 'g') ? SymbolFor(d) : SymbolCtor(d === null ? undefined : d);
          }
          case 'd': { const t = own(v, 'v'); return new DateCtor(t === null ? NaN : t); }
          case 'r': return new RegExpCtor(StringCtor(own(v, 's')), StringCtor(own(v, 'f')));
          case 'R': {
            const i = own(v, 'i');
            if (!(i >= 0 && i < dTable.length)) throw new errorCtors.ReferenceError('isolate: bad back-reference');
            return dTable[i];
          }
          case 'A': return ReflectApply(taBuffer, latin1ToBytes(StringCtor(own(v, 'v'))), []);
          case 't': {
            const bytes = latin1ToBytes(StringCtor(own(v, 'v'))), k = own(v, 'k');
            if (k === 'DataView') return new DataViewCtor(ReflectApply(taBuffer, bytes, []));
            const Ctor = typeof k === 'string' && hasOwnCall(typedArrayCtors, k) ? typedArrayCtors[k] : undefined;
            if (!Ctor) throw new errorCtors.TypeError('isolate: unknown typed array');
            return new Ctor(ReflectApply(taBuffer, bytes, []), 0, ReflectApply(taByteLength, bytes, []) / Ctor.BYTES_PER_ELEMENT);
          }
          case 'h': return handleValue(own(v, 'i'));
          case 'H': return hostFunction(own(v, 'i'), own(v, 'n'));
          default:
            throw new errorCtors.TypeError('isolate: unknown value tag ' + StringCtor(v[TAG]));
        }
      }
      function own(obj, key) {
        return hasOwnCall(obj, key) ? obj[key] : undefined;
      }
      function decodeArg(arg) {
        // [value, tagged?]: untagged values are plain JSON and need no walk.
        return arg[1] ? decode(arg[0]) : arg[0];
      }
      return { __proto__: null, decode, decodeArg };
    })();
    const decode = decoder.decode, decodeArg = decoder.decodeArg;

    // ---- running user code --------------------------------------------------
    // A promise handed to the host is the host's to handle: mark it handled
    // now, before the worker's job drain would report its rejection as unhandled.
    function handOver(value) {
      if (value === null || typeof value !== 'object') return value;
      // A promise of this realm, as instanceof would say without a script's Symbol.hasInstance.
      for (let o = ObjectGetPrototypeOf(value), steps = 0; o !== null && steps < 1000; o = ObjectGetPrototypeOf(o), steps++) {
        if (o === PromisePrototype) {
          ReflectApply(promiseThen, value, [undefined, () => {}]);
          break;
        }
      }
      return value;
    }

    // Frames of code run through indirect eval are reported as <input>; frames
    // of the bridge itself as <null> (or native helpers below it). Node shows
    // the script's filename, with the caller's line and column offsets, and
    // nothing of its own machinery.
    let current = { __proto__: null, filename: undefined, lineOffset: 0, columnOffset: 0, firstLineShift: 0 };
    // Frames of functions called later (the call op) are named after the most
    // recent script: QuickJS's eval does not keep a file name per function.
    let lastRun = current;
    // Functions handed to the host remember the positions of the code that made
    // them, so a later call reports their own file, not the latest script's.
    const functionOrigin = new WeakMapCtor();
    // ---- stack text ------------------------------------------------------------
    // Made on first use (most contexts never format an error), from a part of the
    // bridge (bridge_stack.js): see bridgePart.
    let stackTools = null;
    function stackText() {
      if (stackTools === null) stackTools = stackToolsMade();
      return stackTools;
    }
    function stackToolsMade() {
      return bridgePart('stack')({
        __proto__: null, ObjectDefineProperty, ObjectGetPrototypeOf, ReflectApply, StringCtor, StringIndexOf,
        StringSlice, charCodeAt, errorCtors, newList, positions: () => current,
      });
    }

    // The global's own enumerable properties for the mirror, read without
    // running script code: the snapshot holds copies of their descriptors, and
    // encoding it (passive mode) takes data values and reports accessors.
    function globalsSnapshot() {
      const out = { __proto__: null };
      const keys = ObjectKeys(G);
      for (let i = 0; i < keys.length; i++) {
        const d = ObjectGetOwnPropertyDescriptor(G, keys[i]);
        if (d === undefined) continue;
        ObjectDefineProperty(out, keys[i], hasOwnCall(d, 'value')
          ? { __proto__: null, value: d.value, writable: true, enumerable: true, configurable: true }
          : { __proto__: null, get: d.get, set: d.set, enumerable: true, configurable: true });
      }
      mirrorSnapshot = out;
      return out;
    }

    // One reply per operation. `value` is encoded lazily by toJSON, i.e. after
    // the worker drained the jobs the operation queued.
    //
    // `produce` runs once: the worker may serialize a reply a second time (after
    // freeing memory, when the first attempt ran out of it), and that must not
    // run the op's user code (a getter, a Proxy trap) again.
    function reply(produce, mirror) {
      const info = current;  // positions in stacks refer to this op's code
      let produced = false, threw = false, value, error;
      return {
        __proto__: null,
        toJSON: function () {
          const outer = current;
          current = info;
          try {
            if (!produced) {
              produced = true;
              try { value = produce(); } catch (err) { threw = true; error = err; }
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
              out = { __proto__: null, ok: true, v: e.v, t: e.t };
            } catch (err) {
              out = failure(err, true);
            }
          }
          const valueCount = eLastCount;
          if (mirror) {
            try {
              const g = encode(globalsSnapshot());
              out.g = g.v;
              out.gt = g.t;
              if (quickjsWorker && valueCount + eLastCount >= SPLIT_AT) {
                // Large: the worker writes the value and the globals as two texts (see
                // EngineContext._stringify), so that a plain one passes on unparsed.
                if (threw === false && out.ok) {
                  stash.splitV = out.v;
                  out.v = undefined;
                  out.vs = true;
                }
                stash.splitG = out.g;
                out.g = undefined;
                out.gs = true;
              }
            } catch (err) { /* an unreadable global: skip the mirror */ }
          }
          return out;
    }
    // See encodeReply: from this many containers in a mirrored reply's value and globals.
    const SPLIT_AT = 256;
    // `enc`: the op succeeded but its value could not be encoded (e.g. for lack of
    // memory: the worker may then collect garbage and serialize the reply again).
    function failure(err, enc) {
      let e;
      try { e = encode(err); } catch (inner) { e = encode(new ErrorCtor('isolate: unencodable exception')); }
      return enc ? { __proto__: null, ok: false, e: e.v, t: e.t, enc: true } : { __proto__: null, ok: false, e: e.v, t: e.t };
    }

    // Primordials of the ops below (kept apart from the encoder's).
    const ArrayJoin = Array.prototype.join;
    const ReflectConstruct = Reflect.construct;
    const CHECK_FUNCTION = '__isolate_body';

    function wrapperClosed(filename) {
      const error = new errorCtors.SyntaxError("Unexpected token '}'");
      stackText().setStack(error, "SyntaxError: Unexpected token '}'\n    at " + filename);
      return error;
    }

    // The outcome of code the worker ran through QuickJS's C API (a script
    // compiled with its real file name): the worker stores the completion value
    // or the exception here, then the `finish` op replies with it. The worker
    // takes this object once, as the installing script's completion value (see
    // EngineContext._native_ready); the global keeps no trace of it.
    // `started`: the token of the latest op entered through the C API whose op began
    // (see enter), so the worker knows whether a failed entry ran anything.
    const stash = { __proto__: null, thrown: false, value: undefined, enter: undefined, callPython: undefined,
                    hostHookCalls: undefined, checkRoot: undefined, splitV: undefined, splitG: undefined,
                    part: undefined, started: 0 };
    function takeStash() {
      const value = stash.value;
      stash.thrown = false;
      stash.value = undefined;
      return value;
    }

    const ops = {
      __proto__: null,
      // Reply with the stashed outcome of a run (compileError: of a compile).
      finish(mirror, compileError, code, filename, lineOffset, columnOffset, displayErrors) {
        const thrown = stash.thrown, value = takeStash();  // (no destructuring: no iterator to hook)
        current = lastRun = { __proto__: null, filename: undefined, lineOffset: 0, columnOffset: 0, firstLineShift: 0 };
        if (thrown && compileError) {
          stackText().rewriteNativeCompileError(value, code, filename, lineOffset, columnOffset, displayErrors);
        }
        if (!thrown) handOver(value);
        return reply(() => { if (thrown) throw value; return value; }, mirror);
      },
      call(id, args, mirror) {
        const fn = handleValue(id);
        current = ReflectApply(weakMapGet, functionOrigin, [fn]) || lastRun;
        let value, thrown = false, error;
        try {
          value = handOver(ReflectApply(fn, undefined, decodeArg(args)));
        } catch (err) { thrown = true; error = err; }
        return reply(() => { if (thrown) throw error; return value; }, mirror);
      },
      set_globals(entries) {
        const values = decodeArg(entries);
        // Defined, not assigned: a sandbox key named like a builtin (JSON, Proxy)
        // must become an own enumerable global, as Node's contextified object has it.
        const keys = ObjectKeys(values);
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          try {
            ObjectDefineProperty(G, k, { __proto__: null, value: values[k], writable: true, enumerable: true,
                                         configurable: true });
          } catch (e) {
            G[k] = values[k];  // a non-configurable global (undefined, NaN): plain assignment semantics
          }
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
    };
    // The other ops, made on first use from a part of the bridge (workers/bridge_ops.js):
    // most contexts never see one. Marked added once made: a part that could not be
    // read (no memory left) is asked for again by the next request that names an op.
    let moreOpsAdded = false;
    function addMoreOps() {
      const more = bridgePart('ops')({
        __proto__: null, ArrayJoin, CHECK_FUNCTION, FunctionCtor, FunctionToString, G, ObjectDefineProperty,
        ObjectGetOwnPropertyDescriptor, ObjectGetPrototypeOf, ObjectKeys, ReflectApply, ReflectConstruct,
        ReflectOwnKeys, TAG, decodeArg, errorCtors, functionOrigin, handOver, handleValue, handles, hasOwnCall,
        hostFunctionCache, indirectEval, mapSize, newHandle, newList, promiseThen, readInherited, reply,
        stackText, stash, weakMapGet, wrapperClosed,
        setCurrent: (at) => { current = at; }, setRun: (at) => { current = lastRun = at; }, lastRun: () => lastRun,
      });
      const names = ObjectKeys(more);
      for (let i = 0; i < names.length; i++) defineValue(ops, names[i], more[names[i]], true);
      moreOpsAdded = true;
    }

    // The worker calls this through QuickJS's C API with the request as JSON text.
    const JSONParse = JSON.parse;
    //
    // Nothing here may run user code (the op itself may): the request's array is
    // read by index only (no slice, no iterator, whose lookups a script could hook).
    //
    // `token` is a number that grows with every call; it is written to
    // stash.started just before the op runs. An entry that fails with
    // stash.started below its token ran nothing (the worker may retry it, e.g.
    // after making memory); a nested op can only start once an outer one has.
    function enter(requestText, token) {
      const request = JSONParse(requestText);
      if (stash.callPython !== undefined) {  // handed over by the worker before the first op
        callPython = stash.callPython;
        if (stash.hostHookCalls !== undefined) {
          hookCalls = new Int32ArrayCtor(stash.hostHookCalls);
          quickjsWorker = true;
        }
        stash.callPython = stash.hostHookCalls = undefined;
      }
      const saved = current;  // a nested op (from a host call) must not leak its file into ours
      const op = request[0];
      if (typeof op === 'string' && !moreOpsAdded && !hasOwnCall(ops, op)) addMoreOps();
      if (typeof op !== 'string' || !hasOwnCall(ops, op)) {
        return { __proto__: null, toJSON: () => failure(new errorCtors.TypeError('isolate: unknown op')) };
      }
      if (token !== undefined) stash.started = token;
      try {
        // ops[op].call(op, ...request.slice(1)), with the primordial `call`: the
        // request's own elements are the arguments, with no copy and no hook.
        return ReflectApply(FunctionCall, ops[op], request);
      } catch (err) {
        return { __proto__: null, toJSON: () => failure(err) };
      } finally {
        current = saved;
      }
    }

    stash.enter = enter;
    // The completion value of the installing script: the worker takes the stash from here.
    return stash;
  })();
})(globalThis);
