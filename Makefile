# One-line shortcuts; the scripts they call are the real entry points.
# The static checks run with DEBUG=1 because settings.py (loaded by mypy's Django plugin) needs
# a secret key otherwise.
VENV := .venv/bin

.PHONY: demo test lint fmt typecheck ci bench venv

demo:      ; scripts/demo
test:      ; scripts/test
venv:      ; scripts/venv dev
lint: venv ; $(VENV)/ruff check . && $(VENV)/ruff format --check .
fmt: venv  ; $(VENV)/ruff check --fix --exit-zero . && $(VENV)/ruff format .
typecheck: venv ; DEBUG=1 $(VENV)/mypy .
ci:        ; bash .ci/run
bench: venv ; $(VENV)/python -m bench all
