PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench figures clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/parplan profiles list
	$(BIN)/parplan estimate train --model llama3-70b --gpu h100-sxm --num-gpus 64 --tp 8 --pp 2 --mbs 1 --gbs 256 --seq 4096 --recompute selective
	$(BIN)/parplan plan train --model llama3-70b --gpu h100-sxm --num-gpus 64 --gbs 256 --seq 4096

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# README pictures: an example capacity sweep and one plot per plan kind (benchmarks/figures/*.png)
figures: $(STAMP)
	$(BIN)/python benchmarks/figures/make_figures.py

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -p no:cacheprovider
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
