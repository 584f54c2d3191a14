# The two commands a newcomer needs: `make demo` and `make test`. Both set up everything from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint bench evaluate evaluate-e2e setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]'
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

bench: $(STAMP)
	$(BIN)/streamrec bench

# The quality report under docs/evaluation: baselines and the calibration curve without searches (the headline),
# then streamrec with simulated searches on, to show what searches add.
evaluate: $(STAMP)
	$(BIN)/streamrec evaluate --out docs/evaluation --calibration-weights 0,0.3,0.6,0.9
	$(BIN)/streamrec evaluate --out docs/evaluation/with-searches --searches --no-baselines --calibration-weights 0.6

# Fast path vs end to end (replay through the broker and a worker) over all events: lockstep (each event's
# list before the next event; about 40 minutes here) and free-running (as fast as the worker takes them).
evaluate-e2e: $(STAMP)
	$(BIN)/streamrec evaluate --e2e --lockstep --out docs/evaluation/e2e-lockstep
	$(BIN)/streamrec evaluate --e2e --free-running --out docs/evaluation/e2e-free

clean:
	rm -rf $(VENV) .streamrec
