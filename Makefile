# Two commands for a new user:
#   make demo   — train PPO on CartPole-v1, 16 seeds at once (progress bar, final table, curve.png)
#   make test   — the test suite (pytest -n 2)
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

test: install  # worksteal: an idle worker takes queued tests from the busy one (the long learning tests)
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=20

test-fast: install  # everything but the learning and Brax tests
	$(BIN)/python -m pytest -n 2 -q -m "not learning and not brax"

benchmarks: install
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/learning.py onpolicy
	$(BIN)/python benchmarks/learning.py offpolicy

clean:
	rm -rf $(VENV) runs .pytest_cache
