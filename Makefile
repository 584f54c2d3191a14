# The two commands a newcomer needs: `make demo` and `make test`. Both set up everything from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The install links each module into streamrec.* (setuptools' strict editable mode, which mypy and import-linter
# can follow): a new or removed module means installing again, so the module list is part of the stamp.
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; find models streams benchmarks -name '*.py' | sort) | sha256sum | cut -c1-12)

.PHONY: demo test lint bench evaluate evaluate-e2e setup tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamrec demo

# prometheus and promtool, which the deploy tests run (.ci/install-tools: apt-get as root, else into the venv).
tools: $(STAMP)
	.ci/install-tools $(BIN)

test: $(STAMP) tools
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check models streams tests benchmarks
	$(BIN)/ruff format --check models streams tests benchmarks
	$(BIN)/mypy
	$(BIN)/vulture models streams benchmarks vulture_whitelist.py --min-confidence 60
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q tests/test_architecture.py

# The ml-100k scenario uses the real MovieLens items when cached (else a synthetic catalog of the same size).
bench: $(STAMP)
	$(BIN)/streamrec dataset fetch
	$(BIN)/streamrec bench

# The quality reports under docs/evaluation: MovieLens 100K and KuaiRand-Pure (real viewing with engagement, read from
# ../shared/data, or from KUAIRAND=<folder>), each with every baseline, streamrec uncalibrated and at the default
# calibration weight, and streamrec as deployed (its item model retrained every 20,000 interactions); side by side.
# `evaluate-more`: what simulated searches add, and streamrec on MovieLens over 1, 2, 4 and 8 workers.
.PHONY: evaluate-ml-100k evaluate-kuairand evaluate-workers evaluate-searches evaluate-more
evaluate: $(STAMP)
	$(BIN)/streamrec dataset fetch
	$(MAKE) --no-print-directory -j2 evaluate-ml-100k evaluate-kuairand

evaluate-ml-100k: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation --calibration-weights 0.6,0

evaluate-kuairand: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation/kuairand --dataset kuairand-pure --calibration-weights 0.6,0 \
		$(if $(KUAIRAND),--path $(KUAIRAND))

evaluate-workers: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation/workers --workers 1,2,4,8 --no-baselines

evaluate-searches: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation/with-searches --searches --no-baselines --calibration-weights 0.6 --retrain-every 0

evaluate-more: $(STAMP)
	$(BIN)/streamrec dataset fetch
	$(MAKE) --no-print-directory -j2 evaluate-searches evaluate-workers

# Fast path vs end to end (replay through the broker and workers): all events free-running with one list per event,
# as the prequential protocol has it, through one worker and through four (docs/evaluation/e2e-*).
evaluate-e2e: $(STAMP)
	STREAMREC_COALESCE=false STREAMREC_MAX_BATCH=2000 $(BIN)/streamrec evaluate --e2e --free-running --workers 1 --out docs/evaluation/e2e-1-worker
	STREAMREC_COALESCE=false STREAMREC_MAX_BATCH=2000 $(BIN)/streamrec evaluate --e2e --free-running --workers 4 --out docs/evaluation/e2e-4-workers

clean:
	rm -rf $(VENV) .streamrec build
