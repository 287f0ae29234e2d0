#!/usr/bin/env bash
# Junction's test command: unit tests of every crate plus the end-to-end
# suite (tests/*.rs), which runs the real `junction` binary against the
# real Autobahn|Python, Autobahn|JS and wampy.js clients.
#
# Needs: a Rust toolchain, python3 (3.11+) with the venv module, and
# Node.js (18+) with npm for the JavaScript clients.
# Creates/refreshes the virtualenv .venv (from tests/python/requirements.txt)
# and tests/js/node_modules (`npm ci` from tests/js/package-lock.json), then
# runs `cargo test --workspace --no-fail-fast`; arguments, if any, replace
# `--workspace --no-fail-fast`, e.g.  ./scripts/test.sh -p junction --test pubsub
#
# Without node/npm, or if `npm ci` fails, it warns loudly and goes on: the
# JavaScript client tests (tests/js_clients.rs) then fail, they never skip.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

python="${PYTHON:-python3}"
command -v cargo >/dev/null || fail "cargo not found: install a Rust toolchain (rustup)"
command -v "$python" >/dev/null || fail "$python not found: install Python 3.11+ with venv and pip"

venv="$repo/.venv"
req="$repo/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "scripts/test.sh: setting up $venv (Autobahn|Python client for the end-to-end tests)" >&2
    if [[ ! -x "$venv/bin/python" ]]; then
        "$python" -m venv "$venv" || fail "could not create $venv (on Debian: apt-get install python3-venv)"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
        || fail "pip install -r $req failed (is PyPI reachable?)"
    echo "$want" > "$stamp"
fi
"$venv/bin/python" -c 'import autobahn, cbor2, msgpack, flatbuffers' \
    || fail "$venv is broken: remove it and run again"

export JUNCTION_PYTHON="$venv/bin/python"

# JavaScript clients (Autobahn|JS, wampy.js) for tests/js_clients.rs.
loud() {
    {
        echo "################################################################################"
        echo "# scripts/test.sh: WARNING: $*"
        echo "################################################################################"
    } >&2
}
js="$repo/tests/js"
js_stamp="$js/node_modules/.package-lock.sha256"
js_want="$(cat "$js/package.json" "$js/package-lock.json" | sha256sum | cut -d' ' -f1)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    loud "node/npm not found: the JavaScript client tests (tests/js_clients.rs) cannot run and will FAIL." \
        "Install Node.js 18+ and npm (Debian: apt-get install nodejs npm)."
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
    loud "node $(node --version) is older than 18: the JavaScript client tests (tests/js_clients.rs) will FAIL."
else
    if [[ "$(cat "$js_stamp" 2>/dev/null || true)" != "$js_want" ]]; then
        echo "scripts/test.sh: installing the JavaScript clients in $js/node_modules (npm ci)" >&2
        if (cd "$js" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); then
            echo "$js_want" > "$js_stamp"
        else
            rm -rf "$js/node_modules"
            loud "npm ci in $js failed (is the npm registry reachable?): the JavaScript client" \
                "tests (tests/js_clients.rs) cannot run and will FAIL."
        fi
    fi
    JUNCTION_NODE="$(command -v node)"
    export JUNCTION_NODE
fi
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

if [[ $# -eq 0 ]]; then
    set -- --workspace --no-fail-fast
fi
echo "scripts/test.sh: cargo test $*" >&2
status=0
cargo test "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "scripts/test.sh: FAILED (cargo test exit status $status)" >&2
fi
exit $status
