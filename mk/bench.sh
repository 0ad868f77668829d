#!/bin/sh
# Run the benchmarks; figures are printed beside a reference from the same run.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
exec "$venv/bin/python" -m bench "$@"
