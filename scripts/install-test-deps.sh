#!/usr/bin/env bash
# Installs what callrec's tests need, only when it is missing, so that the
# test command works on a fresh Debian 12 machine and costs nothing on a
# prepared one. Needs root (or sudo) for apt-get and npm -g.
set -euo pipefail

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

# Debian packages: the real peers and measuring tools the tests use.
#   ffmpeg, sox, espeak-ng: make and measure audio; sip-tester: SIPp;
#   cmake: builds libopus for the opus crate; openssh-*: the SFTP peer;
#   nodejs/npm: azurite (Azure Blob peer); bsdutils: `script` (a pty).
packages=(ffmpeg sox libsox-fmt-all espeak-ng sip-tester cmake openssh-server openssh-client nodejs npm bsdutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A machine may have node/npm from elsewhere (not from Debian): keep it.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# cargo tools
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
# A real S3-compatible server (0.15+ needs a newer rustc than 1.95).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "installing s3s-fs 0.14.1 (S3 test peer)"
  cargo install --locked s3s-fs@0.14.1 --features binary
fi
# Azure Blob emulator.
if ! command -v azurite >/dev/null 2>&1; then
  echo "installing azurite (Azure Blob test peer)"
  $sudo_cmd npm install -g --no-audit --no-fund azurite
fi
