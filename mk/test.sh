#!/bin/sh
# Run the test suite in the project's virtual environment.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
