#!/bin/sh
# Run the benchmarks; figures are printed beside Dovecot's from the same run
# (installed privately from apt on first use).
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
"$venv/bin/python" -m pip install -q -e ".[test,bench]"
echo "== upasfs: open, peak memory, 9P throughput beside a local read =="
"$venv/bin/python" -m bench.upasfs_bench
echo "== IMAP through a frontend of a store beside one host =="
"$venv/bin/python" -m bench.frontend_bench
echo "== servers: ours beside Dovecot =="
exec "$venv/bin/python" -m bench --install-dovecot "$@"
