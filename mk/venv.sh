#!/bin/sh
# Create the virtual environment and install the project with its test
# extras.  Shared by the Makefile and the mkfile; reruns only when
# pyproject.toml is newer than the last install.
set -e
venv=${VENV:-.venv}
stamp=$venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install -q --upgrade pip
	"$venv/bin/python" -m pip install -q -e ".[test]"
	touch "$stamp"
fi
# Every session is a new process: give them the bytecode an installed
# package has (an editable install has none, and PYTHONDONTWRITEBYTECODE,
# set on some hosts, stops Python writing it).  Quick when up to date.
"$venv/bin/python" -m compileall -q -j 0 upas auth lib bench >/dev/null
