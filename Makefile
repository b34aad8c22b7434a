# triumvir — every target depends on `setup`, so any target works on a fresh clone.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
INSTALLED   := $(VENV)/.installed
PROTOS      := $(wildcard protos/triumvir/v1/*.proto)
GENERATED   := services/triumvir/v1/.generated
SEEDS       ?= 1000
ENGINE      ?= raft
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup run test sim lint format clean

setup: $(INSTALLED) $(GENERATED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Stubs are generated, never edited: the folder is rebuilt from protos/ whenever a proto changes.
$(GENERATED): $(PROTOS) $(INSTALLED)
	rm -rf services/triumvir/v1
	mkdir -p services/triumvir/v1
	touch services/triumvir/v1/__init__.py
	$(if $(PROTOS),$(PY) -m grpc_tools.protoc -Iprotos --python_out=services --pyi_out=services \
		--grpc_python_out=services $(PROTOS))
	touch $@

# A local 3-replica group on 127.0.0.1:7001-7003, data under ./.data; Ctrl-C stops it.
# make run ENGINE=paxos runs it on Multi-Paxos.
run: setup
	$(VENV)/bin/triumvir up --engine $(ENGINE)

test: setup
	$(PY) -m pytest -q -n $(JOBS) --timeout 600

# make sim SEEDS=5000 [ENGINE=raft]   — many seeds, one summary line
# make sim SEED=1234 [ENGINE=raft]    — replay one seed exactly
sim: setup
ifdef SEED
	$(PY) -m tests.sim.run --seed $(SEED) --engine $(ENGINE)
else
	$(PY) -m tests.sim.run --seeds $(SEEDS) --engine $(ENGINE) --jobs $(JOBS)
endif

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) services/triumvir/v1 .pytest_cache .ruff_cache

# make bench [BENCH_ARGS="--rounds 1 --duration 3"] — triumvir vs etcd on this machine,
# in interleaved rounds; prints medians and the ratios, writes .bench/results.json.
.PHONY: bench
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)
