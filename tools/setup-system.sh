#!/usr/bin/env bash
# Debian packages the full test suite uses (run as root, e.g. by .ci/run / tools/test.sh):
#   chromium        headless check that HTML reports render
#   postgresql      a real server for the shared results store / distributed search tests
#   gcc/g++-aarch64-linux-gnu  cross toolchain linking TVM artifacts for arm64 boards (rpi4, jetson)
# Idempotent: only missing packages are installed. Without root it says what is missing and goes on
# (the tests that need these are skipped with the reason).
set -euo pipefail
PACKAGES=(chromium postgresql gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-system: Debian packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup-system: missing ${missing[*]} (run as root: apt-get install -y ${missing[*]}); tests that need them will skip" >&2
  exit 0
fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
