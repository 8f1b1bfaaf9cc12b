// Spec: script.runInContext(contextifiedObject[, options])
const vm = require('node:vm');
const context = {
  animal: 'cat',
  count: 2
};
const script = new vm.Script('count += 1; name = "kitty";');
vm.createContext(context);
for (let i = 0; i < 10; ++i) {
  script.runInContext(context);
}
console.log(context);
// Prints: { animal: 'cat', count: 12, name: 'kitty' }
