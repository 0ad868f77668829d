#!/bin/sh
# `make interop`: our programs beside plan9port's own (tests/interop).
# They need a built plan9port in $PLAN9 (its ./INSTALL, then upas with
# CC9FLAGS=-fcommon mk install in src/cmd/upas and src/cmd/upas/nfs) and
# are skipped, with the reason, without one; the ones that need a private
# /mail for plan9port's upas/fs also need root.  UPAS_INTEROP_RECORD=1
# saves each exchange to tests/data/interop/ (PLAN9_COMMIT names the build).
set -e
venv=${VENV:-.venv}
sh mk/venv.sh
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -rsx \
	-o python_files='interop_*.py' tests/interop "$@"
