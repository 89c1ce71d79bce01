# Two commands set everything up on a fresh machine (README.md):
#   make demo   install, then ingest → retrieve → annotate → validate the bundled demo data (no API key, no GPU)
#   make test   install with the test, fine-tune (CPU torch first) and review extras, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo
# The fine-tune tests need torch; it goes in first, pinned, so the [finetune] extra's range takes it as it is and
# pip never pulls a CUDA build. TORCH_INDEX=<an index with CPU wheels> where the default index has only CUDA ones.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	@$(BIN)/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$(TORCH)'.split('==')[1])" \
		2>/dev/null || $(BIN)/python -m pip install --quiet '$(TORCH)' $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[test,finetune,review]'

demo: install
	$(BIN)/datakit ingest examples/demo/mimic-cxr --run $(RUN)
	$(BIN)/datakit retrieve --run $(RUN)
	$(BIN)/datakit annotate --run $(RUN)
	$(BIN)/datakit validate --run $(RUN)

test: install-test
	$(BIN)/python -m pytest -q -n 2

clean:
	rm -rf $(VENV) runs .pytest_cache
