// Meant to try every rotation of the input by concatenating copies until
// there are nums.length of them; the loop condition compares the wrong
// quantities, so for two or more numbers it never ends and the array
// doubles on every pass: memory grows without bound.
function solve(nums) {
  let copies = nums.slice();
  while (copies.length / nums.length < copies.length) {
    copies = copies.concat(copies);
  }
  const tails = [];
  for (const x of nums) {
    const at = tails.findIndex(t => t >= x);
    if (at === -1) tails.push(x); else tails[at] = x;
  }
  return tails.length;
}
