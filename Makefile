# The two commands of the README (run, test) and the ones developers use around them.
# uv comes from PyPI (`pip install uv`) when it is not installed; everything else from the lock.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: run test lint bench chaos deps node-deps rabbitmq chromium contract messages

deps:
	@scripts/ensure-uv.sh
	@scripts/ensure-web-assets.sh

# Every npm project from its lock: the tests run the AsyncAPI parser and the Node.js subscriber
node-deps:
	@scripts/ensure-node-deps.sh

rabbitmq:
	@scripts/ensure-rabbitmq.sh

chromium:
	@scripts/ensure-chromium.sh

run: deps rabbitmq
	$(UV) run vcs run

test: deps node-deps rabbitmq chromium
	$(UV) run pytest

lint: deps
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy shared services/intake/vcs_intake services/allocator/vcs_allocator services/notifier/vcs_notifier services/desk/vcs_desk tools/vcs_tools tests

contract: deps
	$(UV) run vcs contract

# The benchmark (issue 18): make bench ARGS="--plot --profile"
bench: deps rabbitmq
	$(UV) run python -m vcs_tools.bench $(ARGS)

# A soak under random faults: make chaos ARGS="--minutes 30 --rate 10 --fault-every 20"
chaos: deps rabbitmq
	$(UV) run vcs chaos $(ARGS)

# After changing a page's text: extract the messages and merge them into the Thai catalog
# (services/intake/vcs_intake/web/locale/th/LC_MESSAGES/messages.po), then translate the new ones.
messages: deps
	mkdir -p .data
	$(UV) run pybabel extract -F services/intake/babel.cfg --no-location -o .data/messages.pot services/intake
	$(UV) run pybabel update -i .data/messages.pot -d services/intake/vcs_intake/web/locale --ignore-obsolete -w 100
