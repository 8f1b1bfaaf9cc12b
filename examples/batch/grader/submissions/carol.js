// Try every subsequence: correct, but exponential time.
function solve(nums) {
  function longest(i, prev) {
    if (i === nums.length) return 0;
    let result = longest(i + 1, prev);
    if (nums[i] > prev) result = Math.max(result, 1 + longest(i + 1, nums[i]));
    return result;
  }
  return longest(0, -Infinity);
}
