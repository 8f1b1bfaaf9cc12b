// Patience sorting with a binary-search bug: `lo = mid` instead of
// `lo = mid + 1` never narrows [lo, hi] once hi === lo + 1, so the loop
// spins forever on most inputs.
function solve(nums) {
  const tails = [];
  for (const x of nums) {
    if (tails.length === 0 || x > tails[tails.length - 1]) {
      tails.push(x);
      continue;
    }
    let lo = 0, hi = tails.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid] < x) lo = mid;
      else hi = mid;
    }
    tails[lo] = x;
  }
  return tails.length;
}
