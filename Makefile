# Two commands set everything up on a fresh machine (README.md):
#   make demo   install, then ingest → retrieve → annotate → validate the bundled demo data (no API key, no GPU)
#   make test   install with the test and review extras, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,review]'

demo: install
	$(BIN)/datakit ingest examples/demo/mimic-cxr --run $(RUN)
	$(BIN)/datakit retrieve --run $(RUN)
	$(BIN)/datakit annotate --run $(RUN)
	$(BIN)/datakit validate --run $(RUN)

test: install-test
	$(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) runs .pytest_cache
