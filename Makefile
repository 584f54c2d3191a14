# The two commands a newcomer needs: `make demo` and `make test`. Both set up everything from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The install links each module into streamrec.* (setuptools' strict editable mode, which mypy and import-linter
# can follow): a new or removed module means installing again, so the module list is part of the stamp.
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; find models streams benchmarks -name '*.py' | sort) | sha256sum | cut -c1-12)

.PHONY: demo test lint bench evaluate evaluate-e2e setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamrec demo

test: $(STAMP)
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

# The quality report under docs/evaluation: baselines and the calibration curve without searches (the headline),
# then streamrec with simulated searches on, to show what searches add.
evaluate: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation --calibration-weights 0,0.3,0.6,0.9
	$(BIN)/streamrec evaluate --out docs/evaluation/with-searches --searches --no-baselines --calibration-weights 0.6

# Fast path vs end to end (replay through the broker and a worker): all events free-running with one list per
# event, as the prequential protocol has it (~15 min here). `--lockstep` (each event's list before the next
# event is sent) is exact too but takes ~10 ms an event here.
evaluate-e2e: $(STAMP)
	STREAMREC_COALESCE=false STREAMREC_MAX_BATCH=2000 $(BIN)/streamrec evaluate --e2e --free-running --out docs/evaluation/e2e-free-per-event

clean:
	rm -rf $(VENV) .streamrec
