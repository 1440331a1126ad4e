#!/usr/bin/env bash
# Debian packages for the optional parts of the project; idempotent. Run as root.
set -euo pipefail
packages=(poppler-utils fonts-wqy-microhei chromium espeak-ng)  # PDF read-back, CJK font for the PDF, browser test, spoken test prompts (tests/models/test_repeats.py)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
