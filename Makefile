# Every target creates .venv and installs the project (with its test extras) when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser of the web phone's test (Debian's chromium package).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint chromium bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ussdloop demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint chromium
	$(BIN)/python -m pytest

# The web phone's browser test drives Debian's Chromium; install it when missing and
# apt-get is there (as root, or through passwordless sudo). Never fails the target:
# without Chromium that test is skipped with the reason.
chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium: no $(CHROMIUM) and no apt-get; the web phone test will be skipped"; \
		exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=; else as_root="sudo -n"; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$as_root apt-get install -y -q chromium \
		|| { $$as_root apt-get update -q && $$as_root apt-get install -y -q chromium; } \
		|| echo "chromium: apt-get could not install it; the web phone test will be skipped"

bench: $(STAMP)
	$(BIN)/python bench/ussd_screens.py
	$(BIN)/python bench/bulk.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
