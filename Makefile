# The two commands a new user runs: `make run` (the whole system, mail caught locally) and `make test`.
.PHONY: run test lint typecheck pytest bootstrap-run bootstrap-test

PYTEST_ARGS ?=

run: bootstrap-run
	uv run python scripts/run.py

test: bootstrap-test lint deps typecheck pytest

bootstrap-run:
	@scripts/bootstrap.sh run

bootstrap-test:
	@scripts/bootstrap.sh test

lint:
	uv run ruff check .
	uv run ruff format --check .

# Every workspace member declares exactly what its src/ imports (deptry; config in each member's pyproject.toml).
.PHONY: deps
DEPTRY_MEMBERS = shared testing $(patsubst %/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
deps:
	@for member in $(DEPTRY_MEMBERS); do \
		echo "deptry $$member"; \
		uv run deptry --no-ansi --config $$member/pyproject.toml $$member/src || exit 1; \
	done

typecheck:
	uv run mypy

pytest:
	uv run pytest $(PYTEST_ARGS)

# Containers (README "Operating"): build the six images and prove each starts; run the Compose stack with one
# real campaign. Both install Debian's docker.io and start a dockerd when none answers, and stop it again.
.PHONY: images compose-smoke

images:
	deploy/docker/images.sh

compose-smoke:
	deploy/docker/compose-smoke.sh
