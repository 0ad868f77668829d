#!/bin/sh
# `make roundcube`: Debian's Roundcube 1.6 (sqlite, served by `php -S` on
# loopback) in headless Chromium against our imap4d as `make run` starts
# it (tests/roundcube): the threaded list, the list sorted by subject, a
# message opened.  Installs what it needs on first use: the apt packages
# (as root, or through sudo) and selenium into the venv (the `roundcube`
# extra of pyproject.toml).  Roundcube's config, database and logs live in
# pytest's temporary directory; nothing under /etc is written.
set -e
venv=${VENV:-.venv}
pkgs="roundcube-core roundcube-sqlite3 php-cli php-sqlite3 chromium chromium-driver"
need=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need
fi
sh mk/venv.sh
"$venv/bin/python" -c 'import selenium' 2>/dev/null ||
	"$venv/bin/python" -m pip install -q -e ".[test,roundcube]"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -rsx --durations=5 \
	-o python_files='rc_*.py' tests/roundcube "$@"
