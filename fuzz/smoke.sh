#!/usr/bin/env bash
# Builds the fuzz targets and runs each briefly on its seeds (for CI).
# Usage: fuzz/smoke.sh [seconds per target, default 20]
# Needs cargo-fuzz (installed here if missing) and RUSTC_BOOTSTRAP=1 on a
# stable toolchain. Set FUZZ_RTP=1 to include the rtp target (builds
# callrec-media and its C codecs).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(sdp metadata multipart sip)
features=()
if [[ "${FUZZ_RTP:-0}" == 1 ]]; then
  targets+=(rtp)
  features=(--features rtp)
fi
cargo fuzz build "${features[@]}"
for t in "${targets[@]}"; do
  corpus="$(mktemp -d)"
  seeds=()
  [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
  echo "fuzzing $t for ${seconds}s"
  cargo fuzz run "${features[@]}" "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048
  rm -rf "$corpus"
done
