#!/bin/sh
# Start a complete local mail host on a copy of the shipped test mail.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
exec "$venv/bin/python" -m upas.runhost "$@"
