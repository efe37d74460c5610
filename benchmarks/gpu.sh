#!/usr/bin/env bash
# The full downstream benchmark and the throughput benchmarks on a lent GPU.
#
#   bash benchmarks/gpu.sh                   # from the repository root, in its virtual environment
#   SHARDS=4 bash benchmarks/gpu.sh          # fewer parallel processes
#
# The downstream plan (benchmarks/downstream.json, profile full) is split over SHARDS
# processes (default: half the CPU cores, at most 8) that share the one GPU: GAN and CNN
# training run there; per-item data loading, albumentations and the logistic regressions
# run on the CPU cores, which is what bounds a single process. Results go to
# benchmarks/results/gpu-<card>/, named by the card, apart from the CPU results; a run
# interrupted by the time limit resumes where it stopped on the next call.
set -euo pipefail
export NO_ALBUMENTATIONS_UPDATE=1
cd "$(dirname "$0")/.."
PY=${PY:-python3}
# MNIST: ../shared/data/mnist beside the checkout, or shared/data/mnist inside it (a copy
# that travels with the working tree to a device machine), or MNIST=DIR.
MNIST=${MNIST:-../shared/data/mnist}
[ -d "$MNIST" ] || MNIST=shared/data/mnist
[ -d "$MNIST" ] || { echo "error: no MNIST IDX folder at ../shared/data/mnist or shared/data/mnist; set MNIST=DIR" >&2; exit 2; }
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: torch sees no CUDA device')"
CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
SLUG=$(echo "$CARD" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
OUT=benchmarks/results/gpu-$SLUG
mkdir -p "$OUT"
CORES=$(nproc)
SHARDS=${SHARDS:-$(( CORES / 2 > 8 ? 8 : (CORES / 2 < 1 ? 1 : CORES / 2) ))}
echo "card: $CARD; $SHARDS processes; results in $OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/card.txt" || true

for arch in dcgan classic; do  # a failure here is reported and does not stop the benchmark
    "$PY" benchmarks/train_throughput.py --data "$MNIST" --arch $arch --device cuda \
        | tee -a "$OUT/train_throughput.jsonl" || echo "train_throughput --arch $arch failed" >&2
done
# ganaug beside a plain loop, sampling, matmul rates (fp32 and bf16) and the achieved share.
"$PY" benchmarks/throughput.py --data "$MNIST" --device cuda --images 200000 --samples 1000000 --sample-batch 16384 \
    --sample-batches 2048 8192 --compile --time-to-quality --quality-budget 120 \
    --out "$OUT/throughput.json" | tail -n 4 || echo "throughput failed" >&2

# torchrun with one process against the plain command: the same losses, and the rates side by side.
"$PY" benchmarks/distributed.py --device cuda --nproc 1 --repeats 1 | tail -n 1 || echo "distributed failed" >&2
cp benchmarks/results/distributed-cuda.json "$OUT/" 2>/dev/null || true

pids=()
for ((k = 0; k < SHARDS; k++)); do
    OMP_NUM_THREADS=2 "$PY" benchmarks/downstream.py --device cuda --source "mnist=$MNIST" --results "$OUT" --shard "$k/$SHARDS" \
        > "$OUT/shard-$k.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status -eq 0 ] || { echo "a shard failed: see $OUT/shard-*.log" >&2; tail -n 5 "$OUT"/shard-*.log >&2; }
"$PY" benchmarks/downstream.py --device cuda --source "mnist=$MNIST" --results "$OUT" --report-only > /dev/null
echo "wrote $OUT/downstream-full.md"
exit $status
