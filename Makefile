# Centralita: `make run` and `make test` set up everything on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := redis-server espeak-ng sox chromium

.PHONY: run test setup system-deps bench lint clean

setup: system-deps $(STAMP)

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Flows are published from the web editor into IVR_FLOWS_DIR: a copy under var/, so the
# tracked definitions stay as shipped.
run: setup
	@data=$${IVR_DATA_DIR:-var}; mkdir -p "$$data"; \
	if [ -z "$$IVR_FLOWS_DIR" ] && [ ! -d "$$data/flows" ]; then cp -r call_flows/definitions "$$data/flows"; fi; \
	echo "Web pages need a login: $(BIN)/ivr users add NAME --role admin --password-stdin"; \
	IVR_FLOWS_DIR=$${IVR_FLOWS_DIR:-$$data/flows} \
	IVR_VALIDATE_SIGNATURE=$${IVR_VALIDATE_SIGNATURE:-$$( [ -n "$$TWILIO_AUTH_TOKEN" ] && echo 1 || echo 0 )} \
	  $(BIN)/ivr serve --demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/ivr bench webhooks
	$(BIN)/ivr bench routing
	$(BIN)/ivr bench ewt --trace ../shared/data/callcenter-1999-01.tsv

lint: setup
	$(BIN)/ruff check ivr call_flows speech queueing recordings tests
	$(BIN)/mypy --strict call_flows queueing/routing.py queueing/wait_time.py

clean:
	rm -rf $(VENV) var .pytest_cache
