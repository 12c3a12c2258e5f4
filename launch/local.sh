#!/usr/bin/env bash
# Single machine: a local Ray cluster is started by `rlvr train` itself.
#   bash launch/local.sh recipes/quickstart.yaml [key=value ...]
set -euo pipefail
recipe=${1:?usage: launch/local.sh RECIPE [key=value ...]}
shift
exec rlvr train "$recipe" "$@"
