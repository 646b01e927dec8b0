#!/usr/bin/env bash
# Runs the whole suite; "no tests collected" (pytest exit 5) is a failure, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks || exit 1
# Import layers as in docs/architecture.md ([tool.importlinter] in pyproject.toml)
.venv/bin/lint-imports || exit 1
.venv/bin/python -m pytest -q --durations=25 "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
