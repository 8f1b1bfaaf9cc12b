// Not in the spec: a small plugin loader with vm modules, whose sources come from an
// object (isolate's twin reads them from a Python dict). Plugins import helpers statically
// and load others with import(); every specifier resolves against the object, relative to
// the importing module, once per context.
if (!require('node:vm').SourceTextModule) {
  const { execFileSync } = require('node:child_process');
  process.stdout.write(execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', __filename]));
  return;
}
const vm = require('node:vm');
const path = require('node:path');

const SOURCES = {
  'lib/strings.js': `
    export const shout = (s) => s.toUpperCase() + '!';
    export const loaded = [];`,
  'plugins/greet.js': `
    import { shout, loaded } from '../lib/strings.js';
    loaded.push('greet');
    export default function greet(name) { return shout('hello ' + name); }`,
  'plugins/count.js': `
    import { loaded } from '../lib/strings.js';
    loaded.push('count');
    export default async function count(words) {
      const { shout } = await import('../lib/strings.js');
      return shout(words.split(' ').length + ' words');
    }`,
};

class PluginLoader {
  constructor() {
    this.context = vm.createContext({});
    this.modules = new Map();
  }
  resolve(specifier, referrer) {
    const key = path.posix.normalize(path.posix.join(path.posix.dirname(referrer), specifier));
    if (!(key in SOURCES)) throw new Error(`no module ${specifier} from ${referrer}`);
    return key;
  }
  module(key) {
    if (!this.modules.has(key)) {
      this.modules.set(key, new vm.SourceTextModule(SOURCES[key], {
        identifier: key,
        context: this.context,
        importModuleDynamically: (specifier, referrer) => this.load(this.resolve(specifier, referrer.identifier)),
      }));
    }
    return this.modules.get(key);
  }
  async load(key) {
    const m = this.module(key);
    if (m.status === 'unlinked') {
      await m.link((specifier, referencing) => this.module(this.resolve(specifier, referencing.identifier)));
    }
    if (m.status === 'linked') await m.evaluate();
    return m;
  }
}

(async () => {
  const loader = new PluginLoader();
  const greet = await loader.load('plugins/greet.js');
  console.log(greet.namespace.default('world'));
  const count = await loader.load('plugins/count.js');
  console.log(await count.namespace.default('one two three'));
  console.log(loader.module('lib/strings.js').namespace.loaded, [...loader.modules.keys()]);
})();
