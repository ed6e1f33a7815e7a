#!/usr/bin/env bash
# Runs every cargo-fuzz target of tickforge (protocol/fuzz and server/fuzz),
# one after the other, SECONDS_PER_TARGET each (default 60), and prints one
# line per target: executions, coverage, corpus size, and PASS, or FAIL with
# the crashing input's path. Exits 1 when any target found a crash.
#
# Installs what it needs: the nightly toolchain (rustup) and cargo-fuzz.
# Each target starts from its committed seeds (<crate>/fuzz/seeds/T, never
# written to) plus what earlier runs found (target/fuzz-corpus/...), with
# its dictionary when it has one (<crate>/fuzz/dict/T.dict, else the one
# named by its first word: decode.dict for decode_bin). Findings are
# written to target/fuzz-artifacts/<crate>/T.
#
#   scripts/fuzz.sh                 every target, 60 s each
#   scripts/fuzz.sh 1800            a campaign: 30 min each
#   FUZZ_ONLY="connection ws_frames" scripts/fuzz.sh 300
#
# Environment:
#   FUZZ_ONLY     space-separated target names to run (default: all)
#   FUZZ_NICE     nice level of builds and runs (default 10; 19 for campaigns
#                 on a shared machine)
#   FUZZ_SUMMARY  also append each target's line, tab-separated, to this file
#   FUZZ_RSS_MB   libFuzzer's memory limit per target (default 2048)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

secs=${1:-60}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || ((secs < 1)); then
    echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number of seconds, got '$secs'" >&2
    exit 2
fi
nice_level=${FUZZ_NICE:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
only=" ${FUZZ_ONLY:-} "
target_dir=${CARGO_TARGET_DIR:-$root/target}

step() { printf '\n==> %s\n' "$*"; }

step "Toolchain: nightly and cargo-fuzz"
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

failed=0
results=()
for crate in protocol server; do
    dir=$root/$crate/fuzz
    [[ -f $dir/Cargo.toml ]] || continue
    mapfile -t targets < <(cd "$root/$crate" && cargo fuzz list)
    wanted=()
    for t in "${targets[@]}"; do
        if [[ "$only" == "  " || "$only" == *" $t "* ]]; then wanted+=("$t"); fi
    done
    ((${#wanted[@]})) || continue
    step "Building $crate/fuzz (${wanted[*]})"
    (cd "$root/$crate" && nice -n "$nice_level" cargo +nightly fuzz build)
    for t in "${wanted[@]}"; do
        work=$target_dir/fuzz-corpus/$crate/$t
        artifacts=$target_dir/fuzz-artifacts/$crate/$t
        log=$target_dir/fuzz-logs/$crate-$t.log
        mkdir -p "$work" "$artifacts" "$(dirname "$log")"
        seeds=()
        [[ -d $dir/seeds/$t ]] && seeds+=("$dir/seeds/$t")
        args=(-max_total_time="$secs" -print_final_stats=1 -rss_limit_mb="$rss_mb" -timeout=30
            -artifact_prefix="$artifacts/")
        for d in "$dir/dict/$t.dict" "$dir/dict/${t%%_*}.dict"; do
            if [[ -f $d ]]; then
                args+=(-dict="$d")
                break
            fi
        done
        step "Fuzzing $crate/$t for ${secs} s (log: $log)"
        before=$(find "$artifacts" -type f | wc -l)
        set +e
        (cd "$root/$crate" && nice -n "$nice_level" cargo +nightly fuzz run "$t" "$work" "${seeds[@]}" -- "${args[@]}") \
            >"$log" 2>&1
        rc=$?
        set -e
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
        corpus=$(find "$work" -type f | wc -l)
        after=$(find "$artifacts" -type f | wc -l)
        if ((rc != 0 || after > before)); then
            failed=1
            # shellcheck disable=SC2012 # libFuzzer names its artifacts by hash: no odd characters
            newest=$(ls -t "$artifacts" 2>/dev/null | head -1)
            status="FAIL (exit $rc; input: $artifacts/${newest:-?}; log: $log)"
            grep -m1 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log" | sed 's/^/    /' || true
        else
            status=PASS
        fi
        line=$(printf '%-9s %-14s %6ss %12s execs %8s/s  %-20s corpus %6s  %s' \
            "$crate" "$t" "$secs" "${execs:-?}" "${speed:-?}" "${cov:-cov: ?}" "$corpus" "$status")
        echo "$line"
        results+=("$line")
        if [[ -n "${FUZZ_SUMMARY:-}" ]]; then
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$crate" "$t" "$secs" \
                "${execs:-}" "${speed:-}" "${cov:-}" "$corpus" "$status" >>"$FUZZ_SUMMARY"
        fi
    done
done

step "Summary"
((${#results[@]})) || { echo "fuzz.sh: no target matched FUZZ_ONLY='${FUZZ_ONLY:-}'" >&2; exit 2; }
printf '%s\n' "${results[@]}"
if ((failed)); then
    echo "fuzz.sh: a target found a crash (see FAIL above)" >&2
    exit 1
fi
echo "fuzz.sh: every target ran ${secs} s without a finding"
