// A part of the bridge (workers/bridge.js, bridgePart): the stack text tools,
// made the first time an error's stack is formatted. Most contexts never do,
// and this code's bytecode would cost every context's creation.
//
// This script makes one function and runs nothing else. The QuickJS worker
// reads its bytecode into a context only when the bridge asks for it, which may
// be after user code ran: so the function takes every intrinsic it uses from
// `P`, what the bridge captured before any user code ran, and reaches no global.
// `positions()` is the bridge's current positions (file name, offsets) of the
// code whose frames are being named.
(function stackTools(P) {
  'use strict';
  const ObjectDefineProperty = P.ObjectDefineProperty, ObjectGetPrototypeOf = P.ObjectGetPrototypeOf;
  const ReflectApply = P.ReflectApply, StringCtor = P.StringCtor, StringIndexOf = P.StringIndexOf;
  const StringSlice = P.StringSlice, charCodeAt = P.charCodeAt, errorCtors = P.errorCtors;
  const newList = P.newList, positions = P.positions;
  // String methods, called with Reflect.apply (errors only: no binding cost).
  function StringSliceCall(s, start, end) { return ReflectApply(StringSlice, s, [start, end]); }
  function StringIndexOfCall(s, search, from) { return ReflectApply(StringIndexOf, s, [search, from]); }
  function StringLastIndexOfCall(s, search, from) {
    // From the end, with indexOf (one name less to capture).
    let found = -1, at = StringIndexOfCall(s, search);
    const last = from === undefined ? s.length : from;
    while (at >= 0 && at <= last) { found = at; at = StringIndexOfCall(s, search, at + 1); }
    return found;
  }
  function spaces(count) { let out = ''; for (let i = 0; i < count; i++) out += ' '; return out; }
  function atLeast(x, min) { return x > min ? x : min; }
  // V8's stack starts with "Name: message"; QuickJS's holds the frames only. With no
  // frames (an error made where no script code was running, such as running out of
  // memory while compiling), V8's is the head alone.
  function nodeStyleStack(name, message, stack) {
    const head = message ? name + ': ' + message : name;
    if (StringSliceCall(stack, 0, head.length) === head) return stack;
    return stack === '' ? head : head + '\n' + stack;
  }
  // A stack rewritten for displayErrors already: "file:line", the source line, then a caret line.
  function displayedStack(stack) {
    const first = StringIndexOfCall(stack, '\n');
    if (first < 0) return false;
    const second = StringIndexOfCall(stack, '\n', first + 1);
    if (second < 0) return false;
    let caret = second + 1;
    while (caret < stack.length && (isSpace(charCodeAt(stack, caret)) || charCodeAt(stack, caret) === 10)) caret++;
    return caret < stack.length && charCodeAt(stack, caret) === 94;  // '^'
  }

  // `firstLine` is the engine's line number of the user's first line (2 when
  // the code was wrapped in a function header line), `firstLineShift` the
  // columns a same-line wrapper added before it.
  function userLine(line) {
    return line - (positions().firstLine || 1) + 1;
  }
  function position(line, col) {
    line = +line; col = +col;
    if (userLine(line) === 1) col = atLeast(col - positions().firstLineShift, 1) + positions().columnOffset;
    return (userLine(line) + positions().lineOffset) + ':' + col;
  }

  // ---- stack text, without the script's String, RegExp or Array methods -----
  // No regular expression: RegExp.prototype.exec fills its result array by
  // assignment (a setter on Array.prototype would see it) and String methods
  // that take a pattern look up Symbol.replace/split on it. Lines are scanned
  // with the captured indexOf/slice/charCodeAt and kept in prototype-less lists.
  function splitLines(text) {
    const lines = newList();
    let n = 0, start = 0;
    for (;;) {
      const nl = StringIndexOfCall(text, '\n', start);
      if (nl < 0) { lines[n++] = StringSliceCall(text, start); return lines; }
      lines[n++] = StringSliceCall(text, start, nl);
      start = nl + 1;
    }
  }
  function joinLines(lines, n) {
    let out = n > 0 ? lines[0] : '';
    for (let i = 1; i < n; i++) out += '\n' + lines[i];
    return out;
  }
  function isSpace(c) { return c === 32 || c === 9 || c === 11 || c === 12 || c === 13 || c === 160; }
  function leadingSpaces(s) {
    let i = 0;
    while (i < s.length && isSpace(charCodeAt(s, i))) i++;
    return i;
  }
  function isBlank(s) { return leadingSpaces(s) === s.length; }
  // The end of a run of digits starting at i (i itself when there is none).
  function digitsEnd(s, i) {
    while (i < s.length) {
      const c = charCodeAt(s, i);
      if (c < 48 || c > 57) break;
      i++;
    }
    return i;
  }
  // "L:C" at s[i..]: the index after it, or -1.
  function lineColEnd(s, i) {
    const a = digitsEnd(s, i);
    if (a === i || a >= s.length || charCodeAt(s, a) !== 58) return -1;
    const b = digitsEnd(s, a + 1);
    return b === a + 1 ? -1 : b;
  }
  // Whether s[i..] is exactly "L:C".
  function isLineCol(s, i) { return lineColEnd(s, i) === s.length; }
  // "FILE:L:C" (FILE may hold colons): the index where ":L:C" starts, or -1.
  function fileLineColSplit(s) {
    const c2 = StringLastIndexOfCall(s, ':');
    if (c2 <= 0) return -1;
    const c1 = StringLastIndexOfCall(s, ':', c2 - 1);
    if (c1 < 0 || !isLineCol(s, c1 + 1)) return -1;
    return c1;
  }
  // The file of a line ending "(FILE:L:C)", 'native' for "(native)", or undefined.
  function trailingFrameFile(line) {
    if (line.length === 0 || charCodeAt(line, line.length - 1) !== 41) return undefined;  // ')'
    const open = StringLastIndexOfCall(line, '(');
    if (open < 0) return undefined;
    const inner = StringSliceCall(line, open + 1, line.length - 1);
    if (inner === 'native') return inner;
    const at = fileLineColSplit(inner);
    return at < 0 ? undefined : StringSliceCall(inner, 0, at);
  }
  // The bridge's own frames: '<null>' when it was loaded from bytecode without
  // debug tables (workers/engine.py), '<isolate-bridge>' from source.
  function isOwnFrame(line) {
    const file = trailingFrameFile(line);
    return file === '<isolate-bridge>' || file === '<null>';
  }
  function isBridgeFrame(line) {
    const file = trailingFrameFile(line);
    return file === '<isolate-bridge>' || file === '<null>' || file === 'native';
  }
  // "<ws>at REST": the index where REST starts, or -1.
  function frameBody(line) {
    const ws = leadingSpaces(line);
    return ws > 0 && StringSliceCall(line, ws, ws + 3) === 'at ' ? ws + 3 : -1;
  }
  // Node's form of one frame line, before file names are applied.
  function nodeFrame(line) {
    const body = frameBody(line);
    if (body < 0) return line;
    return anonymousFile(line, body, topLevelFrame(line, body));
  }
  function topLevelFrame(line, body) {
    const rest = StringSliceCall(line, body);
    // "at <eval> (a.js:3:7)" / "at <anonymous> (a.js:3:7)" -> "at a.js:3:7" (not for <input>)
    for (let k = 0; k < 2; k++) {
      const head = k === 0 ? '<eval> (' : '<anonymous> (';
      if (StringSliceCall(rest, 0, head.length) === head && charCodeAt(rest, rest.length - 1) === 41) {
        const inner = StringSliceCall(rest, head.length, rest.length - 1);
        if (StringSliceCall(inner, 0, 8) !== '<input>:' && fileLineColSplit(inner) >= 0 &&
            StringIndexOfCall(inner, '\n') < 0) {
          return inner;
        }
      }
    }
    return rest;
  }
  function anonymousFile(line, body, rest) {
    // An empty file name (compileFunction's default): V8 says <anonymous>.
    const closing = rest.length > 0 && charCodeAt(rest, rest.length - 1) === 41 ? 1 : 0;
    if (rest.length > 0 && charCodeAt(rest, 0) === 58 && isLineCol(StringSliceCall(rest, 0, rest.length - closing), 1)) {
      return StringSliceCall(line, 0, body) + '<anonymous>' + rest;
    }
    const open = StringIndexOfCall(rest, '(');
    if (open > 0 && charCodeAt(rest, open - 1) === 32 && charCodeAt(rest, open + 1) === 58 &&
        isLineCol(StringSliceCall(rest, 0, rest.length - closing), open + 2)) {
      return StringSliceCall(line, 0, body) + StringSliceCall(rest, 0, open + 1) + '<anonymous>' +
        StringSliceCall(rest, open + 1);
    }
    return StringSliceCall(line, 0, body) + rest;
  }
  // Every "PREFIX<input>:L:C" + SUFFIX in a line, rewritten to name the file.
  function renameInput(line, prefix, suffix, outPrefix, outSuffix, file) {
    const marker = prefix + '<input>:';
    let out = '', from = 0, at = StringIndexOfCall(line, marker);
    while (at >= 0) {
      const start = at + marker.length;
      const end = lineColEnd(line, start);
      if (end >= 0 && StringSliceCall(line, end, end + suffix.length) === suffix) {
        const colon = StringIndexOfCall(line, ':', start);
        const pos = position(StringSliceCall(line, start, colon), StringSliceCall(line, colon + 1, end));
        out += StringSliceCall(line, from, at) + outPrefix + file + ':' + pos + outSuffix;
        from = end + suffix.length;
        at = StringIndexOfCall(line, marker, from);
      } else {
        at = StringIndexOfCall(line, marker, at + 1);
      }
    }
    return from === 0 ? line : out + StringSliceCall(line, from);
  }
  function cleanStack(stack) {
    // The bridge's own frames (e.g. the code-generation stand-ins) are not the user's;
    // nor are native helpers' frames at the bottom.
    const all = splitLines(stack), lines = newList();
    let n = 0;
    for (let i = 0; i < all.length; i++) {
      if (!isOwnFrame(all[i])) lines[n++] = all[i];
    }
    while (n > 0 && (lines[n - 1] === '' || isBridgeFrame(lines[n - 1]))) n--;
    const file = positions().filename;
    for (let i = 0; i < n; i++) {
      // Top-level code of a script compiled with its real file name: QuickJS says
      // "at <eval> (a.js:3:7)" where Node says "at a.js:3:7"; QuickJS names an
      // anonymous function "<anonymous>", Node leaves it out.
      let line = nodeFrame(lines[i]);
      if (file !== undefined) {
        line = renameInput(line, 'at <eval> (', ')', 'at ', '', file);
        line = renameInput(line, '(', ')', '(', ')', file);
        line = renameInput(line, ' ', '', ' ', '', file);
      }
      lines[i] = line;
    }
    return joinLines(lines, n);
  }
  // The lines of a stack that are frames of the user's code.
  function userFrames(err) {
    const all = splitLines(err.stack), frames = newList();
    let n = 0;
    for (let i = 0; i < all.length; i++) {
      if (!isBlank(all[i]) && !isBridgeFrame(all[i])) frames[n++] = all[i];
    }
    frames.length = n;
    return frames;
  }
  function isSyntaxError(err) {
    return err !== null && typeof err === 'object' && ObjectGetPrototypeOf(err) === errorCtors.SyntaxError.prototype &&
      typeof err.stack === 'string';
  }
  // A compile error of the script itself has exactly one frame, "at <input>:L:C".
  function compileErrorPosition(err) {
    if (!isSyntaxError(err)) return null;
    const frames = userFrames(err);
    if (frames.length !== 1) return null;
    const body = frameBody(frames[0]);
    if (body < 0 || StringSliceCall(frames[0], body, body + 8) !== '<input>:' || !isLineCol(frames[0], body + 8)) return null;
    const loc = StringSliceCall(frames[0], body + 8), colon = StringIndexOfCall(loc, ':');
    return [+StringSliceCall(loc, 0, colon), +StringSliceCall(loc, colon + 1)];
  }
  // A compile error of a script compiled with its real file name has one
  // frame, "at FILE:L:C", with the caller's offsets already applied.
  function nativeCompileErrorPosition(err) {
    if (!isSyntaxError(err)) return null;
    const frames = userFrames(err);
    if (frames.length !== 1) return null;
    const body = frameBody(frames[0]);
    if (body < 0) return null;
    const loc = StringSliceCall(frames[0], body), at = fileLineColSplit(loc);
    if (at < 0) return null;
    const colon = StringIndexOfCall(loc, ':', at + 1);
    return [+StringSliceCall(loc, at + 1, colon), +StringSliceCall(loc, colon + 1)];
  }
  function sourceLine(code, index) {
    let start = 0;
    for (let i = 0; i < index; i++) {
      const nl = StringIndexOfCall(code, '\n', start);
      if (nl < 0) return '';
      start = nl + 1;
    }
    const end = StringIndexOfCall(code, '\n', start);
    return end < 0 ? StringSliceCall(code, start) : StringSliceCall(code, start, end);
  }
  function setStack(err, stack) {
    ObjectDefineProperty(err, 'stack', { __proto__: null, value: stack, writable: true, configurable: true });
  }
  function rewriteNativeCompileError(err, code, filename, lineOffset, columnOffset, displayErrors) {
    try {
      let stack = nodeStyleStack(StringCtor(err.name), StringCtor(err.message), cleanStack(err.stack));
      const pos = displayErrors ? nativeCompileErrorPosition(err) : null;
      if (pos) {
        const line = pos[0] - lineOffset, col = line === 1 ? atLeast(pos[1] - columnOffset, 1) : pos[1];
        stack = filename + ':' + pos[0] + '\n' + sourceLine(code, line - 1) + '\n' +
          spaces(atLeast(col - 1, 0)) + '^\n\n' + stack;
      }
      setStack(err, stack);
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
        const caretCol = line === 1 ? atLeast(col - positions().firstLineShift, 1) : col;
        stack = positions().filename + ':' + (line + positions().lineOffset) + '\n' + sourceLine(code, line - 1) + '\n' +
          spaces(atLeast(caretCol - 1, 0)) + '^\n\n' + stack;
      }
      setStack(err, stack);
    } catch (e) { /* frozen error: leave it */ }
  }

  return {
    __proto__: null, cleanStack, nodeStyleStack, displayedStack, compileErrorPosition,
    rewriteStack, rewriteNativeCompileError, setStack,
  };
})
