#!/usr/bin/env bash
# Regenerate the recordings: run every examples/node/<name>.js with node and
# save its stdout as examples/node/<name>.out (the node version goes to VERSION).
# Usage: examples/node/record.sh            (from anywhere; needs node on PATH)
set -euo pipefail
cd "$(dirname "$0")"
node --version > VERSION
for js in *.js; do
  echo "recording ${js%.js}.out"
  node "$js" > "${js%.js}.out"
done
