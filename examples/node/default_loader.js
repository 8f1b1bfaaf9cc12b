// Spec: dynamic import() with vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER.
// Writes test.mjs and test.json to a temporary directory (the spec writes them next to
// the script), then imports both from a script "placed" in that directory.
const { Script, constants } = require('node:vm');
const { resolve, join } = require('node:path');
const { writeFileSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');

const dir = mkdtempSync(join(tmpdir(), 'vm-default-loader-'));
writeFileSync(resolve(dir, 'test.mjs'), 'export const filename = "./test.json";');
writeFileSync(resolve(dir, 'test.json'), '{"hello": "world"}');

// Compile a script that loads test.mjs and then test.json
// as if the script is placed in the same directory.
const script = new Script(
  `(async function() {
    const { filename } = await import('./test.mjs');
    return import(filename, { with: { type: 'json' } })
  })();`,
  {
    filename: resolve(dir, 'test-with-default.js'),
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });

// { default: { hello: 'world' } }
script.runInThisContext().then((ns) => {
  console.log({ ...ns });
  rmSync(dir, { recursive: true });
});
