#!/usr/bin/env bash
# Coverage-guided fuzzing of Junction's parsers with libFuzzer (cargo-fuzz).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   fuzz each target SECONDS (default 60)
#   scripts/fuzz.sh --smoke                 CI: every target 10 s (FUZZ_SMOKE_SECONDS)
#   scripts/fuzz.sh --merge [TARGET...]     fold what earlier runs found into the
#                                           committed corpora (only inputs that add
#                                           coverage), keeping them small
#   scripts/fuzz.sh --list                  the targets
#
# Targets are the functions of fuzz-targets/ (one cargo-fuzz binary each in
# fuzz/fuzz_targets/); docs/reliability.md says what each covers. Each run
# starts from the committed corpus fuzz/corpus/<target>/ (which `cargo test`
# also replays on stable) and writes the inputs it finds to
# fuzz/target/work-corpus/<target>/, so the committed corpus does not grow
# by itself. Crashes (panics, timeouts over 10 s, allocations over 2 GB) are
# saved in fuzz/artifacts/<target>/ and reproduced with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# At the end a table gives per target: executions, libFuzzer's coverage
# figures (cov: edges reached, ft: features) and corpus size, and crashes.
# Exit status: 0 if nothing crashed, 1 if something did.
#
# Needs the nightly toolchain (`cargo +nightly`) and cargo-fuzz (installed
# with `cargo install cargo-fuzz --locked` if missing). Without them --smoke
# prints a loud notice and exits 0 (CI goes on); other modes fail.
# Runs under `nice -n 19`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/fuzz"

TARGETS=(ws_handshake ws_frames rawsocket link_frame peer_msg wamp_json wamp_msgpack wamp_cbor wamp_flatbuffers http_request config)

mode=run
seconds=60
case "${1:-}" in
    --smoke) mode=smoke; seconds="${FUZZ_SMOKE_SECONDS:-10}"; shift ;;
    --merge) mode=merge; shift ;;
    --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    ''|*[!0-9]*) ;;
    *) seconds="$1"; shift ;;
esac
if [[ $# -gt 0 ]]; then
    for t in "$@"; do
        [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "scripts/fuzz.sh: unknown target $t (try --list)" >&2; exit 2; }
    done
    TARGETS=("$@")
fi

loud() {
    {
        echo "################################################################################"
        for line in "$@"; do echo "# scripts/fuzz.sh: $line"; done
        echo "################################################################################"
    } >&2
}
unavailable() {
    if [[ $mode == smoke ]]; then
        loud "FUZZING SKIPPED: $1" \
            "The corpora were still replayed on stable by cargo test (fuzz-targets/tests/corpus.rs)," \
            "but no new inputs were tried. To fuzz: rustup toolchain install nightly; scripts/fuzz.sh --smoke"
        exit 0
    fi
    echo "scripts/fuzz.sh: $1" >&2
    exit 2
}

cargo +nightly --version >/dev/null 2>&1 || unavailable "no nightly toolchain (cargo +nightly), which cargo-fuzz needs."
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
    nice -n 19 cargo install cargo-fuzz --locked >&2 || unavailable "cargo-fuzz is missing and could not be installed."
fi

echo "scripts/fuzz.sh: building the fuzz targets ($(cargo +nightly --version))" >&2
nice -n 19 cargo +nightly fuzz build >&2 || { echo "scripts/fuzz.sh: FAILED to build the fuzz targets" >&2; exit 1; }
bin_dir="$repo/fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

if [[ $mode == merge ]]; then
    for t in "${TARGETS[@]}"; do
        work="$repo/fuzz/target/work-corpus/$t"
        [[ -d $work ]] || { echo "$t: no work corpus (run scripts/fuzz.sh first)"; continue; }
        before=$(find "corpus/$t" -type f | wc -l)
        nice -n 19 "$bin_dir/$t" -merge=1 "corpus/$t" "$work" >/dev/null 2>&1
        echo "$t: corpus $before -> $(find "corpus/$t" -type f | wc -l) files"
    done
    exit 0
fi

logs="$repo/fuzz/target/fuzz-logs"
mkdir -p "$logs"
results=()
crashed=0
for t in "${TARGETS[@]}"; do
    work="$repo/fuzz/target/work-corpus/$t"
    mkdir -p "$work" "artifacts/$t"
    log="$logs/$t.log"
    echo "scripts/fuzz.sh: $t for ${seconds}s (log: $log)" >&2
    stamp="$logs/$t.start"
    touch "$stamp"
    status=0
    nice -n 19 "$bin_dir/$t" "$work" "corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # The last status line (#N DONE / pulse / NEW) carries cov: and ft:.
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    mapfile -t new_artifacts < <(find "artifacts/$t" -type f -newer "$stamp")
    crash="none"
    if [[ $status -ne 0 || ${#new_artifacts[@]} -gt 0 ]]; then
        crashed=1
        crash="CRASH"
        echo "scripts/fuzz.sh: $t CRASHED (exit $status):" >&2
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -8 >&2 || true
        for a in "${new_artifacts[@]}"; do
            echo "scripts/fuzz.sh: $a (base64): $(base64 -w0 "$a" | head -c 4000)" >&2
        done
    fi
    results+=("$(printf '%-17s %12s %7s %7s %12s  %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crash")")
done

echo
printf '%-17s %12s %7s %7s %12s  %s\n' target executions cov ft corpus crashes
for r in "${results[@]}"; do echo "$r"; done
if [[ $crashed -ne 0 ]]; then
    echo "scripts/fuzz.sh: a target crashed; inputs in fuzz/artifacts/<target>/" >&2
    exit 1
fi
