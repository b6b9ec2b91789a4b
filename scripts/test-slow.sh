#!/usr/bin/env bash
# `npm run test:slow`: the whole `npm test` on one CPU, with a CPU-bound process on that same CPU for as long as the
# tests run, so that every spawn, connect and timer waits its turn as on a small loaded machine. A test that passes
# here depends on events, not on how fast this machine is. The busy process is ended when the tests end, however
# they end. Arguments go to `npm test` (e.g. a path filter).
set -euo pipefail
cd "$(dirname "$0")/.."
cpu="${TEST_SLOW_CPU:-0}"
taskset -c "$cpu" node -e 'for (;;) {}' &
busy=$!
trap 'kill "$busy" 2>/dev/null || true; wait "$busy" 2>/dev/null || true' EXIT
taskset -c "$cpu" npm test -- "$@"
