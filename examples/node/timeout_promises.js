// Spec: "Timeout interactions with asynchronous tasks and Promises".
//
// Changed from the spec so that it terminates (and can be recorded): the loop
// busy-waits 500 ms instead of printing Date.now() forever, and the timeout is
// 50 ms instead of 5 ms. What it shows is unchanged: by default the promise
// job runs after runInNewContext() has returned, outside the timeout; with
// microtaskMode: 'afterEvaluate' it runs inside the call and is interrupted.
const vm = require('node:vm');

function loop() {
  console.log('entering loop');
  const end = Date.now() + 500;
  while (Date.now() < end); // the spec: while (1) console.log(Date.now());
  console.log('loop ran for 500 ms: the timeout did not stop it');
}

// 1. Default microtask mode.
try {
  vm.runInNewContext(
    'Promise.resolve().then(() => loop());',
    { loop, console },
    { timeout: 50 }
  );
} catch (err) {
  console.log(`${err.code}: ${err.message}`);
}
// This is printed *before* 'entering loop' (!)
console.log('done executing');

// 2. microtaskMode: 'afterEvaluate' (run after the first part has finished).
setTimeout(() => {
  console.log('-- afterEvaluate --');
  try {
    vm.runInNewContext(
      'Promise.resolve().then(() => loop());',
      { loop, console },
      { timeout: 50, microtaskMode: 'afterEvaluate' }
    );
  } catch (err) {
    console.log(`${err.code}: ${err.message}`);
  }
  console.log('done executing');
}, 0);
