# Cairn: `make run` starts it, `make test` tests it. Both install what they need first.
# Debian's own Python when there is one: every user can run it (the web server runs as the
# unprivileged `cairn` when root starts Cairn), which a Python in root's home is not.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
PIP := $(VENV)/bin/pip

.PHONY: run test bench lint system-run system-test system-bench clean

run: system-run $(VENV)/.installed-run
	$(VENV)/bin/cairn run

test: system-test $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest -n auto --ignore=tests/bench $(PYTEST_ARGS)

bench: system-bench $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest tests/bench -p no:xdist -s $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

system-run:
	@deploy/debian-packages.sh run

system-test:
	@deploy/debian-packages.sh test

system-bench:
	@deploy/debian-packages.sh bench

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit("Cairn needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) .pytest_cache
