# Two entry points: `make demo` (the whole chain on bundled samples) and `make test`.
# Both create .venv when missing. torch is installed first and pinned: 2.13.0 is a CPU wheel on this
# machine's disk, while any other torch spec pulls gigabytes of CUDA packages from the registry.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mocap needs Python 3.11 (mediapipe 0.10.21, bpy 5.0.1)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)

# One stamp per set of extras, redone when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(subst +,$(comma),$*)]'
	touch $@

comma := ,

venv: $(VENV)/.installed-dev+fbx

test: $(VENV)/.installed-dev+fbx
	$(BIN)/python -m pytest

demo: $(VENV)/.installed-dev+fbx
	$(BIN)/mocap demo demo_output

clean:
	rm -rf $(VENV) build *.egg-info
