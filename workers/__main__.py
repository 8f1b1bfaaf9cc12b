"""Serve the isolate wire protocol on stdin/stdout (see protocol/SPEC.md)."""

import os
import sys

from .worker import main

if __name__ == "__main__":
    read_fd, write_fd = os.dup(sys.stdin.fileno()), os.dup(sys.stdout.fileno())
    main(read_fd, write_fd, env=dict(os.environ))
