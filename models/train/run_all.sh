#!/usr/bin/env bash
# The recipe of the shipped pair (each process one torch thread). On 2 shared cores: draft and the small seed model
# run concurrently (~21 and ~10 min), then the grown target (~27 min); export/eval/verify ~10 min.
# Phase-B budgets are wall-clock minutes (see MODEL_CARD.md: step counts are what reproduce a run).
# As run, target3 was started with --b-minutes 16 and an earlier MIX_TARGET (mqar .2, dense .25, multivalue/multiquery
# .12, vt .12) and resumed from its checkpoint at step ~760 with the values below.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYENV_VERSION=system
T=models/train
mkdir -p $T/runs
python3 $T/train.py --name draft2 --seed 11 --b-minutes 20 --copy-aux 8 > $T/runs/draft2.out 2>&1 &
python3 $T/train.py --name seed3 --seed 14 --b-minutes 8 --copy-aux 8 > $T/runs/seed3.out 2>&1
python3 $T/train.py --name target3 --seed 15 --arch target --grow-from seed3 --lr 2e-3 --b-minutes 26 --max-len 2048 \
  --mix target --tokens 2048 --copy-aux 8 > $T/runs/target3.out 2>&1
wait
python3 $T/export.py --run draft2 --out draft
python3 $T/export.py --run target3 --out target
python3 $T/evaluate.py --runs draft2 target3 --lengths 256 512 1024 2048 --n 40
python3 $T/plot.py draft2 seed3 target3
node $T/verify.mjs draft target
node $T/tjs-check.mjs draft target
