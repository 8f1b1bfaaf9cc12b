// Spec: vm.runInNewContext(code[, contextObject[, options]])
const vm = require('node:vm');
const contextObject = {
  animal: 'cat',
  count: 2
};
vm.runInNewContext('count += 1; name = "kitty"', contextObject);
console.log(contextObject);
// Prints: { animal: 'cat', count: 3, name: 'kitty' }
