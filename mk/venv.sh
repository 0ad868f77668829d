#!/bin/sh
# Create the virtual environment and install the project with its test
# extras.  Shared by the Makefile and the mkfile; reruns only when
# pyproject.toml is newer than the last install.
set -e
venv=${VENV:-.venv}
stamp=$venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
	exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[test]"
touch "$stamp"
