# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/setup_landmarks.sh
	bash scripts/setup.sh

demo: setup  ## set up, then run the quickstart recipe end to end on the tiny built-in teacher
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/compress run recipes/quickstart.yaml

test: setup  ## set up, then run the whole test suite
	WANDB_MODE=disabled $(BIN)/python -m pytest -q

clean:
	rm -rf runs wandb .pytest_cache
