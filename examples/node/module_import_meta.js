// Spec: new vm.SourceTextModule(code, { initializeImportMeta }).
// vm.SourceTextModule needs --experimental-vm-modules: re-run with it when started without.
if (!require('node:vm').SourceTextModule) {
  const { execFileSync } = require('node:child_process');
  process.stdout.write(execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', __filename]));
  return;
}
const vm = require('node:vm');
const contextifiedObject = vm.createContext({ secret: 42 });
(async () => {
  // As the spec writes it: the module has no `context`, so it runs in the top context,
  // where there is no `secret`.
  const module = new vm.SourceTextModule(
    'Object.getPrototypeOf(import.meta.prop).secret = secret;',
    {
      initializeImportMeta(meta) {
        meta.prop = {};
      },
    });
  await module.link(() => {});
  try {
    await module.evaluate();
  } catch (e) {
    console.log(`${e.name}: ${e.message}`, module.status);
  }
  // In the context, with the object made there (the spec's suggested fix), it works.
  const inContext = new vm.SourceTextModule(
    'Object.getPrototypeOf(import.meta.prop).secret = secret;',
    {
      context: contextifiedObject,
      initializeImportMeta(meta, module) {
        console.log('initializing import.meta of', module.identifier);
        meta.prop = vm.runInContext('({})', contextifiedObject);
      },
    });
  await inContext.link(() => {});
  await inContext.evaluate();
  console.log(vm.runInContext('Object.prototype.secret', contextifiedObject));
})();
