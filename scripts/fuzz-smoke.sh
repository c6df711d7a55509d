#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a short time (CI smoke; see fuzz/README.md), over
# its corpus, its committed seeds and its regression inputs: a regression that crashes again
# fails the run at once. Installs cargo-fuzz when missing.
#
#   scripts/fuzz-smoke.sh                         every target, 15 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh demux  one target, 10 minutes
#
# cargo fuzz passes -Z flags (sanitizer, coverage instrumentation) to rustc. On a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it accept them; a nightly toolchain needs nothing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-15}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo fuzz has no --locked: fail here if fuzz/Cargo.lock is out of date.
cargo metadata --locked --format-version 1 >/dev/null
cargo fmt --check
cargo fuzz build

bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
if (($#)); then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
for target in "${targets[@]}"; do
  # libFuzzer writes new inputs into the first directory only.
  dirs=("corpus/$target")
  mkdir -p "corpus/$target"
  for extra in "seeds/$target" "regressions/$target"; do
    [ -d "$extra" ] && dirs+=("$extra")
  done
  echo "== $target: ${seconds} s"
  mkdir -p "artifacts/$target"
  log="artifacts/$target.log"
  if ! "$bin/$target" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" "${dirs[@]}" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log"
done
