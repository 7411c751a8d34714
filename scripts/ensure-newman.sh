#!/usr/bin/env bash
# Make sure newman (Postman's command-line runner) is installed for the test that runs
# postman_collection.json against a live platform. It goes into a directory of the
# project (.tools/node_modules, NEWMAN_PREFIX to change it) with the machine's npm, never
# globally. Quiet and quick when it is already there. Without npm it says what to do and,
# outside CI, lets the run go on: the newman test then skips (under CI=true it would
# fail, so the script fails first).
set -euo pipefail

NEWMAN_VERSION="${NEWMAN_VERSION:-6.2.2}"
PREFIX="${NEWMAN_PREFIX:-$(cd "$(dirname "$0")/.." && pwd)/.tools}"
NEWMAN="$PREFIX/node_modules/.bin/newman"
say() { printf 'ensure-newman: %s\n' "$*"; }

[ -x "$NEWMAN" ] && "$NEWMAN" --version 2>/dev/null | grep -qx "$NEWMAN_VERSION" && exit 0

if ! command -v npm >/dev/null; then
    say "npm is missing: install Node.js 16 or newer (apt-get install npm), then run $0." >&2
    say "The newman test skips without it." >&2
    case "${CI:-}" in 1|true|yes) exit 1 ;; *) exit 0 ;; esac
fi

say "installing newman $NEWMAN_VERSION into $PREFIX"
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
    "newman@$NEWMAN_VERSION" >/dev/null
[ -x "$NEWMAN" ] || { say "npm finished but $NEWMAN is missing" >&2; exit 1; }
say "newman $("$NEWMAN" --version) installed"
