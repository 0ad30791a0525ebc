# The two commands of the README, and the ones developers use around them.
.PHONY: run test lint bench deps rabbitmq

deps:
	@scripts/ensure-uv.sh

rabbitmq:
	@scripts/ensure-rabbitmq.sh

run: deps rabbitmq
	uv run vcs run

test: deps rabbitmq
	uv run pytest

lint: deps
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy shared services/intake/vcs_intake services/allocator/vcs_allocator services/notifier/vcs_notifier tools/vcs_tools tests

bench: deps rabbitmq
	uv run python -m vcs_tools.bench
