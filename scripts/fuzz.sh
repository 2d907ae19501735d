#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) and prints executions and coverage per
# target: `make fuzz FUZZ_SECONDS=N`; `make test` runs it for a short smoke.
#
# cargo-fuzz is installed into target/tools (inside the clone) when missing. The targets are
# built with the address sanitizer on the stable toolchain (RUSTC_BOOTSTRAP=1 lets stable
# rustc take -Zsanitizer); FUZZ_SANITIZER=none builds them without it.
#
# Each target starts from its committed inputs (fuzz/seeds/<target>, written by
# fuzz/make_seeds.py, and fuzz/corpus/<target>, the minimized corpus of earlier long runs) and
# grows a working corpus in target/fuzz/corpus/<target>; crashes land in
# target/fuzz/artifacts/<target>, and any crash fails the run.
#
# `scripts/fuzz.sh cmin` (make fuzz-cmin) merges the working corpus into fuzz/corpus/<target>,
# keeping only inputs that add coverage (libFuzzer -merge=1): commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
sanitizer=${FUZZ_SANITIZER:-address}
tools=$PWD/target/tools
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "fuzz: installing cargo-fuzz into target/tools"
  cargo install --quiet --locked --root "$tools" cargo-fuzz
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^jwtguard-fuzz$')
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" --release >/dev/null
if [ "$seconds" = cmin ]; then
  for target in $targets; do
    merged=$(mktemp -d)
    mkdir -p "fuzz/corpus/$target" "target/fuzz/corpus/$target"
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" --release "$target" "$merged" \
      "fuzz/corpus/$target" "target/fuzz/corpus/$target" "fuzz/seeds/$target" -- -merge=1 \
      >"target/fuzz/$target.cmin.log" 2>&1
    rm -rf "fuzz/corpus/$target" && mv "$merged" "fuzz/corpus/$target" && chmod 755 "fuzz/corpus/$target"
    printf '%-14s %5s inputs %8s\n' "$target" "$(ls "fuzz/corpus/$target" | wc -l)" "$(du -sh "fuzz/corpus/$target" | cut -f1)"
  done
  exit 0
fi
summary=()
for target in $targets; do
  corpus=target/fuzz/corpus/$target
  artifacts=target/fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts" "fuzz/corpus/$target"
  log=target/fuzz/$target.log
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" --release "$target" "$corpus" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" -rss_limit_mb=4096 \
      >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $target FAILED (log: $log, inputs: $artifacts)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(ls "$corpus" | wc -l)
  summary+=("$(printf '%-14s %12s executions  %6s edges  %6s corpus' "$target" "$runs" "$cov" "$corp")")
done
echo "fuzz: ${seconds} s per target, sanitizer $sanitizer"
printf '%s\n' "${summary[@]}"
