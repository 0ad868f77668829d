# The recipes live in mk/ so that make and Plan 9 mk (mkfile) run the same steps.
.PHONY: all install test interop roundcube run bench fuzz stress clean

all: test

install:
	sh mk/venv.sh

test:
	sh mk/test.sh

interop:
	sh mk/interop.sh

roundcube:
	sh mk/roundcube.sh

run:
	sh mk/run.sh

bench:
	sh mk/bench.sh

fuzz:
	sh mk/fuzz.sh

stress:
	sh mk/stress.sh

clean:
	rm -rf .venv run bench/out .pytest_cache
