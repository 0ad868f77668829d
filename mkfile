# Plan 9 mk (9base: /usr/lib/plan9/bin/mk).  Same steps as the Makefile.
all:V: test

install:V:
	sh mk/venv.sh

test:V:
	sh mk/test.sh

interop:V:
	sh mk/interop.sh

roundcube:V:
	sh mk/roundcube.sh

run:V:
	sh mk/run.sh

bench:V:
	sh mk/bench.sh

fuzz:V:
	sh mk/fuzz.sh

stress:V:
	sh mk/stress.sh

clean:V:
	rm -rf .venv run bench/out .pytest_cache
