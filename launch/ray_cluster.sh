#!/usr/bin/env bash
# Multi-node Ray, started by hand (or by your cluster tooling) on every node.
#   head:    bash launch/ray_cluster.sh head
#   workers: bash launch/ray_cluster.sh worker HEAD_IP
#   then on the head: rlvr train RECIPE resources.ray_address=auto
set -euo pipefail
role=${1:?usage: launch/ray_cluster.sh head|worker [HEAD_IP]}
port=${RAY_PORT:-6379}
case "$role" in
  head)   ray start --head --port="$port" --disable-usage-stats ;;
  worker) ray start --address="${2:?worker needs HEAD_IP}:$port" --disable-usage-stats ;;
  *)      echo "unknown role: $role (head|worker)" >&2; exit 2 ;;
esac
