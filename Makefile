# The README's two commands: `make demo` and `make test`. Everything installs itself.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
PYTEST_ARGS ?=
DEMO_DIR ?= demo_data
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo 1)

.PHONY: install system-deps cluster cluster-down lint docs test test-all demo demo-replicates demo-selfsup demo-speech model-cpu bench bench-quick bench-gpu study clean

install: $(STAMP)

# torch 2.14.1 is pinned with torchaudio 2.11.0 (the pair that imports together; see pyproject)
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -c "import torch, torchaudio; print('torch', torch.__version__, 'torchaudio', torchaudio.__version__)"
	@touch $@

system-deps:
	bash scripts/system_deps.sh

# a one-node SLURM cluster on loopback for the `slurm` tests (root only; skipped otherwise)
cluster:
ifeq ($(IS_ROOT),1)
	bash scripts/slurm_cluster.sh up
else
	@echo "not root: the local SLURM cluster is not started and the slurm tests will skip"
endif

cluster-down:
	bash scripts/slurm_cluster.sh down

# ruff: lint rules and the format, both checked (`ruff format .` applies the format)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the guide in docs/ as a site in site/, strict: a broken link, page or API reference fails the build;
# the API page reads the source statically (no torch import); mkdocs and its plugins: the `docs` extra
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e '.[dev,docs]'
	@touch $@

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# the fast suite (CPU, tiny model) including the real-SLURM tests, in TEST_JOBS worker processes
# (pytest-xdist; the slurm tests share one worker); TEST_JOBS=0 runs it in this process
TEST_JOBS ?= 2
test: install system-deps cluster
	$(PY) -m pytest -m "not slow and not gpu" -q -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

test-all: install system-deps cluster
	$(PY) -m pytest -q $(PYTEST_ARGS)

# the whole study, small, on CPU, on the embedded demo corpus; prints where the report is
demo: install system-deps
	$(PY) -m transfersep.demo.run --data $(DEMO_DIR)

# the demo's recipe readings with replicates, into its own study: 3 seeds x 2 folds of the
# Bach10-style set, then 3 seeds of the Dagstuhl-style set (whole-model fine-tunes from 1/4 and all
# of pretraining, their probes, the baselines); the second reuses the first's pretrainings
demo-replicates: install system-deps
	$(PY) -m transfersep.demo.run --data $(DEMO_DIR) --study demo-replicates --downstream bach10 \
		--seeds 0,1,2 --folds 0,1 --finetune whole --pretrain-steps quarter,end
	$(PY) -m transfersep.demo.run --data $(DEMO_DIR) --study demo-replicates --downstream dagstuhl \
		--seeds 0,1,2 --folds 0 --finetune whole --pretrain-steps quarter,end

# the demo study with the self-supervised pretrainings (MixIT, bootstrapped DC) on the Slakh-style
# mixtures beside the supervised one, at the end of pretraining; reuses the runs `make demo` finished
demo-selfsup: install system-deps
	$(PY) -m transfersep.demo.run --data $(DEMO_DIR) --pretrain slakh --objective dc,mixit,bootstrap pretrain_steps=end

# the demo study pretrained on speech: the LibriMix-style corpus espeak-ng reads aloud, probed and
# fine-tuned on the voices (Dagstuhl-style) and instruments (Bach10-style) sets at every pretraining
# length; reuses the baselines `make demo` finished (docs/speech.md)
demo-speech: install system-deps
	$(PY) -m transfersep.demo.run --data $(DEMO_DIR) --pretrain librimix --downstream bach10,dagstuhl

# the shipped CPU model `slakh-cpu`, from nothing: render the large Slakh-style corpus, pretrain with
# the CPU preset on one thread (7 min 26 s + 41 min 26 s on a 2-core AMD EPYC), then check the weights are the
# shipped ones (the digest matches only on the same machine class and torch version)
CPU_DATA ?= cpu_data
model-cpu: install system-deps
	$(PY) -m transfersep.demo.corpus $(CPU_DATA) --size large --only slakh
	OMP_NUM_THREADS=1 $(PY) -m transfersep.cli.train experiment=cpu paths.data_dir=$(CPU_DATA) study=cpu \
		pretrain=slakh augment=none seed=0
	$(PY) -m transfersep.cli models --compare runs/cpu/pretrain/slakh-none

bench: install
	$(PY) -m transfersep.bench --out bench/results.json

bench-quick: install
	$(PY) -m transfersep.bench --quick --out bench/results-quick.json

# on a GPU machine: the CUDA tests and the GPU figures, under 5 minutes (scripts/gpu_check.sh)
bench-gpu: install
	PY=$(PY) bash scripts/gpu_check.sh

# the study, every stage of sweeps/grid.yaml in order (add ARGS=...)
study: install
	$(VENV)/bin/transfersep study $(ARGS)

clean:
	rm -rf runs outputs multirun .pytest_cache site
