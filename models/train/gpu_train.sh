#!/usr/bin/env bash
# GPU variant of the last fine-tune (run once, on the lent NVIDIA H200, through the project's device tool):
# several fine-tunes of target5 side by side on one GPU (16 CPU cores generate the batches), each then evaluated on
# the GPU with the fixed evaluation seed. The card's name is recorded in each run's final.pt (args.device_name) and
# in gpu_env.txt. Needs runs/target5/final.pt (carried). As run, the evaluations were written without the _h200 tag and
# renamed when committed; the script now tags them.
#   bash models/train/gpu_train.sh OUTDIR [MINUTES]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?output folder}
MIN=${2:-6}
DEV=${DEVICE:-cuda}
T=models/train
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" $T/runs $T/results
[ -f $T/runs/target5/final.pt ] || { echo "gpu_train.sh: runs/target5/final.pt missing" >&2; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch; print('torch', torch.__version__)"; } > $T/results/gpu_env.txt 2>&1
LIMIT=$(python3 -c "print(int($MIN * 60 + 90))")
COMMON="--device $DEV --b-minutes $MIN --min-len 256 --max-len 2048 --copy-aux 8"
# g1: target5's own recipe (multivalue-heavy mix, no-repeat loss), 8x the batch and ~20x the tokens
timeout $LIMIT python3 $T/train.py --name g1 --seed 31 --init-from target5 --mix mv --unlikelihood 1 --lr 1e-3 --tokens 16384 $COMMON > $T/runs/g1.out 2>&1 &
# g2: the same with one function-preserving layer on top (room for copy suppression after retrieval)
timeout $LIMIT python3 $T/train.py --name g2 --seed 32 --init-from target5 --deepen 1 --mix mv --unlikelihood 1 --lr 1e-3 --tokens 16384 $COMMON > $T/runs/g2.out 2>&1 &
# g3: more, smaller steps at a higher rate
timeout $LIMIT python3 $T/train.py --name g3 --seed 33 --init-from target5 --mix mv --unlikelihood 1 --lr 2e-3 --tokens 8192 $COMMON > $T/runs/g3.out 2>&1 &
# g4: the balanced target mix (less multivalue) with the no-repeat loss, for comparison
timeout $LIMIT python3 $T/train.py --name g4 --seed 34 --init-from target5 --mix target --unlikelihood 1 --lr 1e-3 --tokens 16384 $COMMON > $T/runs/g4.out 2>&1 &
wait
for r in g1 g2 g3 g4; do
  [ -f $T/runs/$r/final.pt ] || continue
  timeout 150 python3 $T/evaluate.py --runs $r --lengths 1024 2048 --n 40 --device $DEV --tag _h200 > $T/runs/eval_$r.out 2>&1 &
done
wait
for r in g1 g2 g3 g4; do tail -3 $T/runs/$r.out; cat $T/runs/eval_$r.out 2>/dev/null | grep -v '^\[' ; done
tar czf "$OUT/gpu_runs.tgz" $T/results/gpu_env.txt $T/runs/g*.out $T/runs/eval_g*.out $T/runs/g?/final.pt $T/runs/g?/log.csv $T/results/eval_g*_h200.json 2>/dev/null
ls -la "$OUT"
