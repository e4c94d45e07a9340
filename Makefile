# The course's commands. A newcomer needs two of them:
#   make lab    JupyterLab on notebooks/, in a venv built from the lock file
#   make test   lint, unit tests, every notebook run as a test by nbval, platform check
# Both build .venv from requirements-lock.txt the first time (a few minutes).
# Each recipe lives in scripts/course.py (plain Python), so that Windows learners, who
# have no make, run the same thing: py -3.11 scripts\course.py lab

PYTHON ?= $(shell command -v python3.11 || command -v python3)
COURSE := $(PYTHON) scripts/course.py
PY := .venv/bin/python
DEV_PY := .venv-dev/bin/python

.PHONY: lab test test-slow test-browser places setup setup-dev unit unit-fast notebooks platforms lint lock requirements student \
	execute clean help

help:
	@echo "make lab        start JupyterLab on notebooks/ (builds .venv the first time)"
	@echo "make test       lint + unit tests + every notebook under nbval + platform check"
	@echo "make test-slow  the slow unit tests (training runs, kernels, nbgrader); CI runs them too"
	@echo "make unit-fast  the unit tests that take seconds, for quick work"
	@echo "make places     Colab, an emulated GPU and Binder (2 GiB, 1 CPU) simulated; as root"
	@echo "make student    student copies of the notebooks in build/student/"
	@echo "make execute NB=notebooks/01_....ipynb   re-run a notebook and store its outputs"
	@echo "make lock       re-resolve requirements-lock.txt (uv, every platform)"

lab test test-slow test-browser places setup setup-dev unit notebooks platforms lint lock requirements:
	$(COURSE) $@

unit-fast:
	$(COURSE) unit -m "not slow"

student: setup-dev
	$(DEV_PY) scripts/make_student_copies.py notebooks build/student

# Offline; nbconvert keeps the inline figures so that the committed notebook shows them.
execute: setup
	@test -n "$(NB)" || (echo "usage: make execute NB=notebooks/NAME.ipynb" && false)
	MMLEARN_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 .venv/bin/jupyter nbconvert \
		--to notebook --execute --inplace --ExecutePreprocessor.timeout=600 $(NB)

clean:
	rm -rf build .pytest_cache
