#!/usr/bin/env bash
# Starts or stops every real server the project uses (Kafka, the schema registry, Keycloak,
# moto for the AWS provider) on
# loopback: `scripts/infra.sh up|down|status`. Each server's own script caches its download.
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:-status}
case "$cmd" in
  up)
    # Fetch one at a time (they share ~/.m2), then start them all in parallel.
    bash kafka.sh fetch
    bash registry.sh fetch
    bash moto.sh fetch
    pids=()
    for s in kafka registry keycloak moto; do bash "$s.sh" up & pids+=("$!"); done
    status=0
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    exit $status
    ;;
  down | status)
    for s in moto keycloak registry kafka; do bash "$s.sh" "$cmd" || true; done
    ;;
  *)
    echo "usage: scripts/infra.sh up|down|status" >&2
    exit 2
    ;;
esac
