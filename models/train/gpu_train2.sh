#!/usr/bin/env bash
# Second GPU round (same card, right after gpu_train.sh): longer fine-tunes of the best first-round runs.
#   bash models/train/gpu_train2.sh OUTDIR [MINUTES]    (unpacks runs/gpu1/gpu_runs.tgz when g2/g3 are absent)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?output folder}
MIN=${2:-4.5}
DEV=${DEVICE:-cuda}
T=models/train
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
{ [ -f $T/runs/g2/final.pt ] && [ -f $T/runs/g3/final.pt ]; } || tar xzf $T/runs/gpu1/gpu_runs.tgz
for r in g2 g3; do [ -f $T/runs/$r/final.pt ] || { echo "gpu_train2.sh: runs/$r/final.pt missing (run gpu_train.sh first)" >&2; exit 1; }; done
LIMIT=$(python3 -c "print(int($MIN * 60 + 60))")
COMMON="--device $DEV --b-minutes $MIN --max-len 2048 --copy-aux 8 --mix mv --unlikelihood 1"
timeout $LIMIT python3 $T/train.py --name h1 --seed 41 --init-from g2 --lr 1e-3 --tokens 16384 --min-len 256 $COMMON > $T/runs/h1.out 2>&1 &
timeout $LIMIT python3 $T/train.py --name h2 --seed 42 --init-from g2 --lr 5e-4 --tokens 32768 --min-len 256 $COMMON > $T/runs/h2.out 2>&1 &
timeout $LIMIT python3 $T/train.py --name h3 --seed 43 --init-from g3 --lr 1e-3 --tokens 8192 --min-len 256 $COMMON > $T/runs/h3.out 2>&1 &
timeout $LIMIT python3 $T/train.py --name h4 --seed 44 --init-from g2 --lr 1e-3 --tokens 16384 --min-len 1024 $COMMON > $T/runs/h4.out 2>&1 &
wait
for r in h1 h2 h3 h4; do
  [ -f $T/runs/$r/final.pt ] && timeout 120 python3 $T/evaluate.py --runs $r --lengths 1024 2048 --n 40 --device $DEV --tag _h200 > $T/runs/eval_$r.out 2>&1 &
done
wait
for r in h1 h2 h3 h4; do tail -1 $T/runs/$r.out; grep -v '^\[' $T/runs/eval_$r.out 2>/dev/null; done
tar czf "$OUT/gpu_runs2.tgz" $T/runs/h*.out $T/runs/eval_h*.out $T/runs/h?/final.pt $T/runs/h?/log.csv $T/results/eval_h*_h200.json 2>/dev/null
ls -la "$OUT"
