#!/usr/bin/env bash
# Junction's test command: unit tests of every crate plus the end-to-end
# suite (tests/*.rs), which runs the real `junction` binary against the
# real Autobahn|Python client.
#
# Needs: a Rust toolchain and python3 (3.11+) with the venv module.
# Creates/refreshes the virtualenv .venv (from tests/python/requirements.txt)
# and runs `cargo test --workspace --no-fail-fast`; arguments, if any,
# replace `--workspace --no-fail-fast`, e.g.  ./scripts/test.sh -p junction --test pubsub
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
