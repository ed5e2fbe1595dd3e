# Shortcuts for developers; the README's two commands need none of this.
.PHONY: install test lint demo bench serve

install:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports

demo:
	.venv/bin/clm demo --reset

bench:
	.venv/bin/python bench/ingest.py

serve:
	.venv/bin/clm serve
