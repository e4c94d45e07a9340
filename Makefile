# The course's commands. A newcomer needs two of them:
#   make lab    JupyterLab on notebooks/, in a venv built from the lock file
#   make test   unit tests, then every notebook run as a test by nbval
# Both build .venv from requirements-lock.txt the first time (a few minutes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests and notebook runs never touch the network: the course models are shipped.
# No network, same hashes. nbval adds MPLBACKEND=Agg (figures are drawn but not rendered);
# `make execute` keeps the inline backend so the committed notebooks show their figures.
OFFLINE := MMLEARN_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
# No screen (a server, a container, CI): don't try to open a browser.
# Jupyter refuses to run as root unless told (containers, some cloud machines).
LAB_FLAGS ?= $(if $(DISPLAY),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root,)
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 \
	--nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test unit notebooks student execute lock binder lint clean help

help:
	@echo "make lab       start JupyterLab on notebooks/ (builds .venv the first time)"
	@echo "make test      unit tests + every notebook under nbval (offline)"
	@echo "make student   student copies of the notebooks in build/student/"
	@echo "make execute NB=notebooks/01_....ipynb   re-run a notebook and store its outputs"
	@echo "make lock      rewrite requirements-lock.txt from .venv; make binder refreshes binder/"

$(STAMP): requirements-lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; print(f"Python {v[0]}.{v[1]} from $(PYTHON)"); \
		(v == (3, 11)) or print("warning: the lock file is made for Python 3.11; other versions may not resolve")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $$(grep '^pip==' requirements-lock.txt)
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lab: $(STAMP)
	@echo "Starting JupyterLab; open the http://127.0.0.1:... URL it prints below."
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(LAB_FLAGS)

test: lint unit notebooks

unit: $(STAMP)
	$(OFFLINE) MPLBACKEND=Agg $(PY) -m pytest tests

notebooks: $(STAMP)
	$(OFFLINE) MPLBACKEND=Agg $(PY) -m pytest $(NBVAL_FLAGS) notebooks

student: $(STAMP)
	$(PY) scripts/make_student_copies.py notebooks build/student

execute: $(STAMP)
	@test -n "$(NB)" || (echo "usage: make execute NB=notebooks/NAME.ipynb" && false)
	$(OFFLINE) $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 $(NB)

lock: $(STAMP)
	(sed -n '1,3p' requirements-lock.txt; $(PY) -m pip freeze --all --exclude-editable \
		| grep -viE '^(mmlearn|faiss)') > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt
	$(MAKE) binder

binder:
	$(PYTHON) scripts/make_binder_requirements.py

lint: $(STAMP)
	$(VENV)/bin/ruff check mmlearn scripts tests benchmarks

clean:
	rm -rf build .pytest_cache
