# The two commands of the README (run, test) and the ones developers use around them.
# uv comes from PyPI (`pip install uv`) when it is not installed; everything else from the lock.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: run test lint bench deps rabbitmq contract

deps:
	@scripts/ensure-uv.sh

rabbitmq:
	@scripts/ensure-rabbitmq.sh

run: deps rabbitmq
	$(UV) run vcs run

test: deps rabbitmq
	$(UV) run pytest

lint: deps
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy shared services/intake/vcs_intake services/allocator/vcs_allocator services/notifier/vcs_notifier services/desk/vcs_desk tools/vcs_tools tests

contract: deps
	$(UV) run vcs contract

bench: deps rabbitmq
	$(UV) run python -m vcs_tools.bench
