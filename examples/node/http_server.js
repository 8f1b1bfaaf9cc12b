// Spec: "Example: Running an HTTP server within a VM".
//
// Changed from the spec so that it terminates (and can be recorded): the
// server listens on 127.0.0.1 port 0 (a free port) instead of 8124, the code
// returns the server, and the example then requests '/' once, prints the
// response and closes the server. The port is not printed (it varies).
'use strict';
const vm = require('node:vm');
const http = require('node:http');

const code = `
((require) => {
  const http = require('node:http');
  const server = http.createServer((request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end('Hello World\\n');
  }).listen(0, '127.0.0.1');
  console.log('Server running at http://127.0.0.1:<port>/');
  return server;
})`;

const server = vm.runInThisContext(code)(require);
server.on('listening', () => {
  const { port } = server.address();
  http.get(`http://127.0.0.1:${port}/`, (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => { body += chunk; });
    response.on('end', () => {
      console.log(response.statusCode, response.headers['content-type']);
      process.stdout.write(body); // 'Hello World\n'
      server.close();
    });
  });
});
