# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/setup_landmarks.sh
	bash scripts/setup.sh

demo: setup  ## set up, then run the quickstart recipe end to end on the tiny built-in teacher
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/compress run recipes/quickstart.yaml

PYTEST := WANDB_MODE=disabled $(BIN)/python -m pytest -q
LITERT := $(VENV)-litert

test: setup $(LITERT)/.installed  ## set up, then run the whole test suite (the LiteRT tests in .venv-litert)
	$(PYTEST)
	$(subst $(BIN),$(LITERT)/bin,$(PYTEST)) tests/export/test_litert.py

test-fast: setup  ## the same, without the tests marked slow (over about 10 s each): the edit-test loop
	$(PYTEST) -m "not slow"

$(LITERT)/.installed: pyproject.toml scripts/setup_litert.sh
	bash scripts/setup_litert.sh

clean:
	rm -rf runs wandb .pytest_cache
