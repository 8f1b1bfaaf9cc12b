// The Node twin of examples/quickstart.py (not from the spec): the same job
// with node:vm, so that the Python quickstart can be checked against Node.
const vm = require('node:vm');

// 1. Compile once, run over many sandboxes.
const script = new vm.Script('total = price * qty; `${qty} x ${item} = ${total}`', { filename: 'order.js' });
const orders = [
  { item: 'apple', price: 50, qty: 4 },
  { item: 'pear', price: 75, qty: 2 },
  { item: 'melon', price: 300, qty: 1 },
];
for (const order of orders) {
  console.log(script.runInNewContext(order));
}
console.log('grand total:', orders.reduce((sum, order) => sum + order.total, 0));

// 2. A long-lived context calling a function of the host.
function currency(cents) {
  return `${(cents / 100).toFixed(2)} EUR`;
}
const shop = vm.createContext({ taxRate: 0.2, currency });
vm.runInContext(`
function withTax(cents) {
  return Math.round(cents * (1 + taxRate));
}
function invoice(cents) {
  return 'due: ' + currency(withTax(cents));
}
`, shop);
console.log(shop.invoice(650));

// 3. Runaway code is stopped by a timeout (milliseconds).
try {
  vm.runInNewContext('while (true) {}', {}, { timeout: 100 });
} catch (err) {
  console.log(`${err.code}: ${err.message}`);
}
console.log('still working:', vm.runInNewContext('6 * 7'));
