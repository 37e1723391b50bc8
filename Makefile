# Two commands for a new user:
#   make demo   — train PPO on CartPole-v1, 16 seeds at once (progress bar, final table, curve.png)
#   make test   — the test suite (pytest -n 2: unit tests, then learning tests)
# Both create .venv and install purerl with its dependencies from PyPI on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install benchmarks clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "purerl needs Python >= 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/purerl train ppo --env CartPole-v1 --num-seeds 16 --total-timesteps 500000

# `make test` is two pytest sessions. The unit tests (all but `learning`) compile at XLA's
# backend optimization level 0: they are compile-bound, and it about halves their time (in a
# fresh-clone CI, 2-core AMD EPYC: 16m11s, against about 31 min at the default level).
# The learning tests keep the default level, at which their levels were measured. Both sessions
# run, even when the first fails. worksteal: an idle worker takes queued tests from the busy one.
UNIT_XLA_FLAGS := --xla_backend_optimization_level=0

test: install
	@status=0; \
	XLA_FLAGS="$$XLA_FLAGS $(UNIT_XLA_FLAGS)" $(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=20 \
		-m "not learning" || status=$$?; \
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=20 -m learning || status=$$?; \
	exit $$status

test-fast: install  # everything but the learning and Brax tests
	XLA_FLAGS="$$XLA_FLAGS $(UNIT_XLA_FLAGS)" $(BIN)/python -m pytest -n 2 -q -m "not learning and not brax"

benchmarks: install
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/learning.py onpolicy
	$(BIN)/python benchmarks/learning.py offpolicy

clean:
	rm -rf $(VENV) runs .pytest_cache
