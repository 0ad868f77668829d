#!/bin/sh
# The long reliability runs: SIGKILLs mid-operation, then many clients at once,
# then ten IMAP clients whose every reply is checked against a client's picture.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
"$venv/bin/python" -m tests.reliability crash --iterations "${RELIABILITY_ITERATIONS:-500}"
"$venv/bin/python" -m tests.reliability stress --clients 24 --seconds "${STRESS_SECONDS:-600}"
"$venv/bin/python" -m tests.reliability sessions --clients 10 --seconds "${SESSIONS_SECONDS:-300}"
