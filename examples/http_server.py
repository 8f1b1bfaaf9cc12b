"""Spec: "Example: Running an HTTP server within a VM" (examples/node/http_server.js).

Node hands `require` to the code so that it can start an http server itself.
The Python translation turns it around: the server is Python's
ThreadingHTTPServer, and each request is answered by a JavaScript function
living in an isolate context. The function receives the method and the path
and returns {status, headers, body}. The example listens on 127.0.0.1 (a free
port), requests '/' once with urllib, prints the response and shuts down.

Run: python examples/http_server.py
"""

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import isolate
from _nodeprint import log

code = """
((method, path) => {
  if (method !== 'GET' || path !== '/') {
    return { status: 404, headers: { 'Content-Type': 'text/plain' }, body: 'Not Found\\n' };
  }
  return { status: 200, headers: { 'Content-Type': 'text/plain' }, body: 'Hello World\\n' };
})"""
context = isolate.create_context()
handle = isolate.run_in_context(code, context)  # an isolate.JSFunction


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        response = handle(self.command, self.path)  # runs in the context's worker
        body = response["body"].encode()
        self.send_response(response["status"])
        for name, value in response["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep stderr quiet
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
serving = threading.Thread(target=server.serve_forever, daemon=True)
serving.start()
log("Server running at http://127.0.0.1:<port>/")
try:
    host, port = server.server_address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as response:
        log(response.status, response.headers["Content-Type"])
        print(response.read().decode(), end="")  # 'Hello World\n'
finally:
    server.shutdown()
    server.server_close()
    serving.join()
