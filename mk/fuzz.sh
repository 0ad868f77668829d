#!/bin/sh
# Coverage-guided fuzzing of every target in fuzz/ (atheris; hypothesis if
# atheris cannot be installed), FUZZ_SECONDS each.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
"$venv/bin/python" -m pip install -q -e ".[test,fuzz]" || echo "atheris unavailable: hypothesis will fuzz"
for t in $("$venv/bin/python" -c 'from fuzz import TARGETS; print(*TARGETS)'); do
	"$venv/bin/python" -m fuzz.run "$t" -t "${FUZZ_SECONDS:-300}"
done
