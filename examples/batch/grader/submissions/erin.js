// Patience sorting behind a memo keyed by the input. Bug: the key is meant
// to be padded to a fixed width, but the loop grows `padded` while testing
// `key`, so for short inputs it never stops and the string doubles on every
// pass: memory grows without bound (and an empty input spins forever).
const memo = {};
function solve(nums) {
  const width = 64;
  const key = nums.join(",");
  let padded = key;
  while (key.length < width) padded += padded;  // should be: padded.length
  if (padded in memo) return memo[padded];
  const tails = [];
  for (const x of nums) {
    let lo = 0, hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid] < x) lo = mid + 1; else hi = mid;
    }
    tails[lo] = x;
  }
  return (memo[padded] = tails.length);
}
