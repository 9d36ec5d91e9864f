#!/usr/bin/env bash
# Installs what callrec's tests need, only when it is missing, so that the
# test command works on a fresh Debian 12 machine and costs nothing on a
# prepared one. Needs root (or sudo) for apt-get.
set -euo pipefail

# Debian packages: the real peers and measuring tools the tests use.
packages=(ffmpeg sox libsox-fmt-all espeak-ng sip-tester cmake openssh-server openssh-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# cargo tools
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
