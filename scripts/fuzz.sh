#!/usr/bin/env bash
# Builds the libFuzzer targets under fuzz/ and runs each for a bounded time:
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# SECONDS_PER_TARGET defaults to 10; no TARGET means every target in fuzz/Cargo.toml.
#
# Engine: libFuzzer through the libfuzzer-sys crate on the stable toolchain. cargo-fuzz would add
# nightly-only sanitizer flags; here the script passes the stable SanitizerCoverage flags itself,
# so nothing has to be installed but a C++ compiler (libfuzzer-sys builds libFuzzer from source).
# fuzz/Cargo.toml's release profile keeps debug assertions and overflow checks on: an arithmetic overflow is a
# crash, as it is in the tests, not a silent wrap as in a normal release build.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/, read only) and from the
# corpus earlier runs grew (fuzz/target/corpus/<target>/, not committed; CI starts without it).
# A crash, a timeout (one input running longer than FUZZ_INPUT_TIMEOUT seconds) or an
# out-of-memory input fails the run: the input is written to fuzz/artifacts/<target>/ and the
# command replaying it is printed.
#
# Environment:
#   FUZZ_JOBS           targets run at the same time (default 1; 2 on a 2-core CI machine
#                       halves the fuzzing time)
#   FUZZ_PROFILE        cargo profile of fuzz/Cargo.toml (default release: optimized, with
#                       overflow checks and debug assertions)
#   FUZZ_INPUT_TIMEOUT  seconds one input may take (default 10)
#   FUZZ_RSS_MB         memory limit of a fuzzing process (default 2048)
#   FUZZ_ARGS           more libFuzzer flags, e.g. "-dict=..." or "-only_ascii=1"
#   FUZZ_OPT_LEVEL      optimization level of that profile (default: the profile's, 3); 1 builds
#                       faster and fuzzes slower
#   FUZZ_TARGET_DIR     build and grown-corpus directory (default fuzz/target)
#   FUZZ_SKIP           targets to leave out, space separated (e.g. one whose known crash is
#                       being fixed elsewhere; say so where it is set)
#   FUZZ_STATS          file to append one line of results per target to (for docs/benchmarks.md)
#   FUZZ_FORK           1: libFuzzer's fork mode, which records a crash and goes on fuzzing
#                       (for long campaigns); the run still fails if any input crashed
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
jobs="${FUZZ_JOBS:-1}"
profile="${FUZZ_PROFILE:-release}"
input_timeout="${FUZZ_INPUT_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
extra_args="${FUZZ_ARGS:-}"
stats_file="${FUZZ_STATS:-}"
fork="${FUZZ_FORK:-0}"

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi

mapfile -t all_targets < <(sed -n 's/^name = "\([a-z_0-9]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^node-fuzz$' || true)
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for t in "${all_targets[@]}"; do [ -f "fuzz/fuzz_targets/$t.rs" ] && targets+=("$t"); done
fi
if [ -n "${FUZZ_SKIP:-}" ]; then
  kept=()
  for t in "${targets[@]}"; do
    case " $FUZZ_SKIP " in
      *" $t "*) echo "== skipping $t (FUZZ_SKIP)" ;;
      *) kept+=("$t") ;;
    esac
  done
  targets=("${kept[@]}")
fi
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "unknown fuzz target $t (have: ${all_targets[*]})" >&2
    exit 2
  fi
done

# 1. A C++ compiler for libFuzzer itself (libfuzzer-sys compiles it with the cc crate).
if ! command -v c++ >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "== installing g++ (libFuzzer is C++)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++ >/dev/null
fi

# 2. Build. --target makes RUSTFLAGS apply to the fuzzed code only, not to build scripts and
#    proc macros (which would otherwise need libFuzzer's symbols to link).
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
if [ -n "${FUZZ_OPT_LEVEL:-}" ]; then
  profile_var="CARGO_PROFILE_$(echo "$profile" | tr 'a-z-' 'A-Z_')_OPT_LEVEL"
  export "$profile_var=$FUZZ_OPT_LEVEL"
fi
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
echo "== building ${#targets[@]} fuzz target(s) (profile $profile, $host)"
build_start=$(date +%s)
cargo build --manifest-path fuzz/Cargo.toml --locked --profile "$profile" --target "$host" "${bin_args[@]}"
build_secs=$(( $(date +%s) - build_start ))
echo "== build took ${build_secs}s"
bindir="$CARGO_TARGET_DIR/$host/$profile"

# 3. Run. A scratch directory for the targets that write files (fixture roots, kubeconfigs),
#    on tmpfs when there is one: creating and removing files thousands of times a second on
#    ext4 is 50 times slower.
scratch_base=/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_base=/dev/shm; fi
scratch=$(mktemp -d "$scratch_base/node-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export NODE_FUZZ_SCRATCH="$scratch"
export RUST_BACKTRACE=1

run_one() {
  local t="$1" log="$scratch/$1.log"
  local work="$CARGO_TARGET_DIR/corpus/$t" art="fuzz/artifacts/$t"
  mkdir -p "$work" "$art"
  local dirs=("$work" "fuzz/corpus/$t")
  # Seeds found on this machine but not committed (a third party's files).
  if [ "$t" = seccomp_docker ] && [ -f /usr/share/containers/seccomp.json ]; then
    mkdir -p "$scratch/extra-$t"
    cp /usr/share/containers/seccomp.json "$scratch/extra-$t/containers-common.json"
    dirs+=("$scratch/extra-$t")
  fi
  local flags=(-max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb="$rss_mb"
    -print_final_stats=1 -artifact_prefix="$art/")
  if [ -f "fuzz/dict/$t.dict" ]; then flags+=(-dict="fuzz/dict/$t.dict"); fi
  if [ "$fork" = 1 ]; then flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1); fi
  local marker="$scratch/start-$t" rc=0 start
  touch "$marker"
  start=$(date +%s)
  # shellcheck disable=SC2086
  timeout --kill-after=30 $((seconds + 120)) "$bindir/$t" "${flags[@]}" $extra_args "${dirs[@]}" \
    >"$log" 2>&1 || rc=$?
  local secs=$(( $(date +%s) - start )) runs corpus new_artifacts
  if [ "$fork" = 1 ]; then
    # The fork-mode parent prints "#<runs>: cov: ..." lines.
    runs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
  else
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  fi
  corpus=$(find "$work" -type f | wc -l)
  new_artifacts=$(find "$art" -type f -newer "$marker" | wc -l)
  if [ "$rc" -eq 0 ] && [ "$new_artifacts" -gt 0 ]; then rc=1; fi
  local result="ok"
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc, $new_artifacts input(s) in $art)"
    {
      echo "---- $t failed; the end of its log:"
      grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -20 || true
      grep -A2 "panicked at" "$log" | head -6 || true
      local input
      for input in $(find "$art" -type f -newer "$marker" | head -20); do
        echo "crashing input: $input"
        echo "replay: $bindir/$t $input"
      done
    } >&2
  fi
  printf '%-24s %12s runs %6ss %7s corpus  %s\n' "$t" "${runs:-?}" "$secs" "$corpus" "$result"
  if [ -n "$stats_file" ]; then
    echo "$t runs=${runs:-?} seconds=$secs corpus=$corpus result=$result" >>"$stats_file"
  fi
  [ "$rc" -eq 0 ]
}

echo "== fuzzing ${#targets[@]} target(s) for ${seconds}s each, $jobs at a time"
fuzz_start=$(date +%s)
failed=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
echo "== fuzzing took $(( $(date +%s) - fuzz_start ))s (build ${build_secs}s)"
if [ "$failed" -ne 0 ]; then
  echo "== fuzzing FAILED: see the inputs under fuzz/artifacts/ (replay: <binary> <input>)" >&2
  exit 1
fi
echo "== no crash, timeout or out-of-memory input"
