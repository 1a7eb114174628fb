# The README's two commands: `make demo` and `make test`. Both create .venv and install privlab into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# torch/torchvision pinned here (the versions this project is developed against); the rest from pyproject.toml.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench lint catalogue clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check $(TORCH)
	$(PIP) install --quiet --disable-pip-version-check -e '.[test,faiss,ray]' $(TORCH)
	touch $(STAMP)

# One sweep over every pipeline on the embedded digits set (cpu size, 2 worker processes, 1 torch thread each).
demo: install
	OMP_NUM_THREADS=1 $(VENV)/bin/privlab sweep examples/demo.yaml --out runs/demo --workers 2
	@echo "Open the report in a browser: $(CURDIR)/runs/demo/report.html"

# Two test workers, one torch thread each: oversubscribed torch is many times slower on small machines.
test: install
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n 2 -q

bench: install
	$(VENV)/bin/privlab bench --markdown BENCHMARKS.md

# Regenerate docs/reliability.md's message tables from the catalogue tests (the messages privlab really prints).
catalogue: install
	$(PY) scripts/reliability_catalogue.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs .pytest_cache
