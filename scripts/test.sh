#!/usr/bin/env bash
# The whole test suite of callrec: installs what the tests need on a fresh
# Debian 12 machine (when missing), then runs fmt, clippy, the doc tests, a
# short fuzz run of every fuzz target, and every test (nextest, last, so its
# summary closes the output).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== doc tests"
cargo test --workspace --locked --doc
echo "== fuzz targets: build and a short run each"
FUZZ_RTP=1 fuzz/smoke.sh 10
echo "== cargo nextest"
cargo nextest run --workspace --locked --no-fail-fast --profile ci
