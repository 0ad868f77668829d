#!/bin/sh
# Run the benchmarks; figures are printed beside Dovecot's from the same run
# (installed privately from apt on first use).
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
"$venv/bin/python" -m pip install -q -e ".[test,bench]"
exec "$venv/bin/python" -m bench --install-dovecot "$@"
