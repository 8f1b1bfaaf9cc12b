// Spec: vm.Module — construct, link, evaluate (the foo/secret example).
// vm.SourceTextModule needs --experimental-vm-modules: re-run with it when started without.
if (!require('node:vm').SourceTextModule) {
  const { execFileSync } = require('node:child_process');
  process.stdout.write(execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', __filename]));
  return;
}
const vm = require('node:vm');
const contextifiedObject = vm.createContext({
  secret: 42,
  print: console.log,
});
(async () => {
  // Step 1: construct (parses the source; a SyntaxError would throw here).
  const bar = new vm.SourceTextModule(`
    import s from 'foo';
    s;
    print(s);
  `, { context: contextifiedObject });
  console.log(bar.status, bar.dependencySpecifiers);
  // Step 2: link. The linker returns a module for each import.
  async function linker(specifier, referencingModule) {
    if (specifier === 'foo') {
      return new vm.SourceTextModule(`
        // The "secret" variable refers to the global variable we added to
        // "contextifiedObject" when creating the context.
        export default secret;
      `, { context: referencingModule.context });
    }
    throw new Error(`Unable to resolve dependency: ${specifier}`);
  }
  await bar.link(linker);
  console.log(bar.status);
  // Step 3: evaluate. Prints 42.
  await bar.evaluate();
  console.log(bar.status);
})();
