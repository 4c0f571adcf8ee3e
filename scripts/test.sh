#!/usr/bin/env bash
# `npm test`, the README's test command (and what `.ci/run` runs): prepares the machine
# (scripts/test-setup.sh), type-checks, then runs every test on SQLite and the PostgreSQL pass
# (scripts/run-tests.mjs --db both). Strict: a test that would skip for want of a tool fails,
# and the run fails on any skipped test (docs/testing.md). Arguments narrow the files run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PALLAS_TEST_PG_URL="${PALLAS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PALLAS_TEST_STRICT=1
bash scripts/test-setup.sh
npx tsc -b
npx tsc -p tsconfig.test.json
exec node scripts/run-tests.mjs --db both "$@"
