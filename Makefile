# vnf — the two commands a new user needs are `make demo` and `make test`.
# Every target installs what it needs itself: the virtualenv, the Python packages, and the
# Debian packages the tests use (tcpdump, promtool), via apt-get, when they are missing.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PKGS := tcpdump prometheus iproute2
PYTEST_ARGS ?=

.PHONY: all venv deps demo test test-fast bench lint typecheck proto clean help

all: help

help:
	@echo "make demo   bring up the default lab, dial subscribers, run traffic, print the report, tear down"
	@echo "make test   install everything and run the whole suite (integration tests need root)"
	@echo "make bench  run the benchmarks; JSON reports land in bench/results/"
	@echo "make lint   ruff + mypy --strict"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages used by the tests (promtool to check /metrics, tcpdump for captures).
deps:
	@missing=""; \
	command -v tcpdump >/dev/null || missing="$$missing tcpdump"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/vnf demo

test: $(STAMP) deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not integration and not slow" $(PYTEST_ARGS)

bench: $(STAMP) bench/gen/pktgen
	$(PY) -m bench.run

bench/gen/pktgen: bench/gen/pktgen.c
	$(CC) -O2 -Wall -Wextra -o $@ $<

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

proto: $(STAMP)
	$(PY) -m vnf.api.codegen

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/gen/pktgen
