// A small template compiler, run inside an isolate context.
//
//   {{ expr }}             the value of a JS expression over `it` (the data), HTML-escaped
//   {{ expr | filter }}    ... passed through a filter first: filters are Python callables
//   {% for x of expr %}    a loop, closed by {% end %}
//   {% if expr %}          a condition, closed by {% end %}
//
// compileTemplate(source) returns the body of a function of `it`; the host compiles it with
// isolate.compile_function(body, ["it"], filename="pages/x.tpl"). Line N of the template is
// line N of the body, so a stack trace points at the template line that failed.
function compileTemplate(source) {
  const TAG = /\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g;
  const lines = (text) => text.split('\n').length - 1;
  let code = 'let out = "";';
  let last = 0;
  let open = 0;
  for (let m; (m = TAG.exec(source)) !== null; last = TAG.lastIndex) {
    const text = source.slice(last, m.index);
    if (text) code += 'out += ' + JSON.stringify(text) + ';' + '\n'.repeat(lines(text));
    if (m[1] !== undefined) {
      const [expr, ...filters] = m[1].split('|').map((s) => s.trim());
      let value = '(' + expr + ')';
      for (const f of filters) value = 'filters.' + f + '(' + value + ')';
      code += 'out += filters.escape(String(' + value + '));' + '\n'.repeat(lines(m[1]));
    } else {
      const stmt = m[2].trim();
      if (stmt === 'end') { code += '}'; open--; }
      else if (stmt.startsWith('for ')) { code += 'for (const ' + stmt.slice(4) + ') {'; open++; }
      else if (stmt.startsWith('if ')) { code += 'if (' + stmt.slice(3) + ') {'; open++; }
      else throw new SyntaxError('unknown tag {% ' + stmt + ' %}');
      code += '\n'.repeat(lines(m[2]));
    }
  }
  if (open !== 0) throw new SyntaxError(open + ' {% end %} missing');
  const rest = source.slice(last);
  if (rest) code += 'out += ' + JSON.stringify(rest) + ';' + '\n'.repeat(lines(rest));
  return code + '\nreturn out;';
}
