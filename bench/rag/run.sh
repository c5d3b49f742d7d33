#!/usr/bin/env bash
# Search at scale and ingest throughput (bench/rag/scale.cpp), with sqlite-vec's vec0.so from
# tests/js/node_modules when it is installed (./scripts/install-deps, x86-64 only).
# Usage: bench/rag/run.sh [scale.cpp's options: --sizes 10000,100000 --queries 1000 --threads 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --build build --target rag-scale >/dev/null
vec0=tests/js/node_modules/sqlite-vec-linux-x64/vec0.so
args=()
[ -f "$vec0" ] && args+=(--vec0 "$PWD/${vec0%.so}")
exec build/bench/rag-scale "${args[@]}" "$@"
