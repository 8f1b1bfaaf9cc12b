// Spec: support of dynamic import() in compilation APIs — importModuleDynamically as a function.
// It needs --experimental-vm-modules: re-run with it when started without.
if (!require('node:vm').SyntheticModule) {
  const { execFileSync } = require('node:child_process');
  process.stdout.write(execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', __filename]));
  return;
}
const { Script, SyntheticModule } = require('node:vm');
(async function main() {
  const script = new Script('import("foo.json", { with: { type: "json" } })', {
    async importModuleDynamically(specifier, referrer, importAttributes) {
      console.log(specifier);  // 'foo.json'
      console.log(referrer === script);  // The compiled script
      console.log({ ...importAttributes });  // { type: 'json' }
      const m = new SyntheticModule(['bar'], () => { });
      await m.link(() => { });
      m.setExport('bar', { hello: 'world' });
      return m;
    },
  });
  const result = await script.runInThisContext();
  console.log({ ...result });  //  { bar: { hello: 'world' } }
  // Without importModuleDynamically, import() rejects.
  try {
    await new Script('import("foo.json")').runInThisContext();
  } catch (e) {
    console.log(e.code);
  }
})();
