#!/usr/bin/env bash
# Make sure a Chromium is installed for the browser tests of the dashboards. Playwright's
# own browser download does not work here, so the tests drive Debian's `chromium`
# (BROWSER_PATH, default /usr/bin/chromium). Quiet and quick when it is already there;
# on Debian/Ubuntu as root it is installed with apt. Where it cannot be installed it says
# what to do and, outside CI, lets the run go on: the browser tests then skip (under
# CI=true they would fail, so the script fails first).
set -euo pipefail

BROWSER_PATH="${BROWSER_PATH:-/usr/bin/chromium}"
say() { printf 'ensure-browser: %s\n' "$*"; }

[ -x "$BROWSER_PATH" ] && exit 0

if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    say "no browser at $BROWSER_PATH and cannot install one here (needs Debian/Ubuntu and root)." >&2
    say "Install Chromium and point BROWSER_PATH at it; the browser tests skip without it." >&2
    case "${CI:-}" in 1|true|yes) exit 1 ;; *) exit 0 ;; esac
fi

say "installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
[ -x "$BROWSER_PATH" ] || { say "chromium installed but $BROWSER_PATH is missing" >&2; exit 1; }
say "$("$BROWSER_PATH" --version 2>/dev/null || echo chromium) installed"
