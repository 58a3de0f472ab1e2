#!/usr/bin/env bash
# Cost of GraphQL detection on request bodies (Benchmarks/graphql/main.swift),
# built with -O straight from GraphQLSupport's sources (stdlib only, so no
# package build is needed). Usage: Benchmarks/graphql/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export PATH="/opt/swift/usr/bin:$PATH"
swiftc -O -enforce-exclusivity=unchecked -module-name GraphQLBench \
  "$ROOT"/Plugins/GraphQL/Support/*.swift "$HERE/main.swift" -lm -o "$OUT/graphql-bench" 2>&1 | grep -v warning || true
"$OUT/graphql-bench"
