# Two commands on a fresh machine:
#   make demo   set up .venv and train LoRA on the tiny offline InternVL (CPU, ~1 minute)
#   make test   set up .venv and run the whole test suite
PY ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-loaded setup chromium clean
demo: $(STAMP)
	$(VENV)/bin/python train.py recipes/tiny-demo.yaml

test: $(STAMP) chromium
	$(VENV)/bin/python -m pytest -q -n auto --dist loadgroup

# The same suite beside two CPU-bound processes: it must hold on a busy machine too.
test-loaded: $(STAMP) chromium
	$(VENV)/bin/python tests/load.py 2 -- $(VENV)/bin/python -m pytest -q -n auto --dist loadgroup

setup: $(STAMP)

# torch first (the build on local disk), then deepspeed without build isolation (its setup imports
# torch; isolated it would record torch 0.0), then the toolkit with its pinned ranges.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q "torch>=2.14,<2.15" "torchvision>=0.29,<0.30"
	$(VENV)/bin/pip install -q --no-build-isolation "deepspeed>=0.19,<0.20"
	$(VENV)/bin/pip install -q -e ".[dev]"
	$(VENV)/bin/pip check
	touch $(STAMP)

# The report tests open pages in Debian's Chromium (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) output
