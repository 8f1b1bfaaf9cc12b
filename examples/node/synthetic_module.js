// Spec: vm.SyntheticModule (the JSON module, and syntheticModule.setExport()).
// vm.SyntheticModule needs --experimental-vm-modules: re-run with it when started without.
if (!require('node:vm').SyntheticModule) {
  const { execFileSync } = require('node:child_process');
  process.stdout.write(execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', __filename]));
  return;
}
const vm = require('node:vm');
const assert = require('node:assert');
(async () => {
  // A JSON source exposed as a module with a default export, used by another module.
  const source = '{ "a": 1 }';
  const module = new vm.SyntheticModule(['default'], function() {
    const obj = JSON.parse(source);
    this.setExport('default', obj);
  });
  const user = new vm.SourceTextModule(
    "import data from 'data.json'; export const doubled = data.a * 2;");
  await user.link((specifier) => {
    if (specifier === 'data.json') return module;
    throw new Error(`Unable to resolve dependency: ${specifier}`);
  });
  await user.evaluate();
  console.log(module.namespace.default, user.namespace.doubled);

  // setExport needs the module linked; the exports are live for importers.
  const m = new vm.SyntheticModule(['x'], () => {
    m.setExport('x', 1);
  });
  try {
    m.setExport('x', 0);
  } catch (e) {
    console.log(e.code);
  }
  await m.link(() => {});
  await m.evaluate();
  assert.strictEqual(m.namespace.x, 1);
  m.setExport('x', 2);
  console.log(m.namespace.x, m.status);
})();
