#!/usr/bin/env bash
# Time and peak memory of `ganaug generate` writing 100,000 PNGs (10 classes x 10,000).
#
#   bash benchmarks/generate_100k.sh            # from the repository root; needs GNU time
#   OUT=/some/dir bash benchmarks/generate_100k.sh
#
# Two models: 8x8 digits and 28x28 MNIST (../shared/data/mnist, skipped when absent),
# each trained for one epoch (quality does not matter here, only the writing). Prints
# wall-clock time and "Maximum resident set size" (peak RSS) of each generate run.
set -euo pipefail
export NO_ALBUMENTATIONS_UPDATE=1
OUT=${OUT:-/tmp/gen-bench}
MNIST=${MNIST:-$(dirname "$0")/../../shared/data/mnist}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is missing: apt-get install -y time" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

bench() {  # bench NAME RUN_DIR
    echo "== ganaug generate $2 --out $OUT/$1 --per-class 10000 --quiet"
    "$TIME" -v ganaug generate "$2" --out "$OUT/$1" --per-class 10000 --quiet 2> "$OUT/$1.time"
    grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$OUT/$1.time"
    echo "   PNG files: $(find "$OUT/$1" -name '*.png' | wc -l)"
    rm -rf "$OUT/$1"
}

ganaug train digits --out "$OUT/run" --epochs 1 --quiet
bench digits-out "$OUT/run"
if [ -d "$MNIST" ]; then
    ganaug train "$MNIST" --out "$OUT/mnist" --epochs 1 --quiet
    bench mnist-out "$OUT/mnist"
fi
