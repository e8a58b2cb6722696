#!/usr/bin/env bash
# Install the pi coding agent (the npm package) into .cache/pi-oracle, for the oracle tests
# and the real-harness checks. Never run pi on a user's session file: it rewrites files it opens.
set -euo pipefail
cd "$(dirname "$0")/.."
PI_VERSION="${PI_VERSION:-0.73.1}"
dir=.cache/pi-oracle
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"tracetune-pi-oracle","private":true,"type":"module"}' > package.json
npm install --no-audit --no-fund --silent "@mariozechner/pi-coding-agent@${PI_VERSION}"
