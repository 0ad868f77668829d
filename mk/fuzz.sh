#!/bin/sh
# Coverage-guided fuzzing of every target in fuzz/ (atheris; hypothesis if
# atheris cannot be installed), FUZZ_SECONDS each.
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
"$venv/bin/python" -m pip install -q -e ".[test,fuzz]" || echo "atheris unavailable: hypothesis will fuzz"
for t in imap_parser pop3_protocol ninep_codec mbox_parser mime_parser factotum_rpc ratfs_ctl; do
	"$venv/bin/python" -m fuzz.run "$t" -t "${FUZZ_SECONDS:-300}"
done
