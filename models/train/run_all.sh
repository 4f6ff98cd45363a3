#!/usr/bin/env bash
# Full recipe (each process one torch thread; on 2 shared cores draft and seed run concurrently, then the target).
# Wall time here: ~1 h on 2 CPU cores shared with other work.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYENV_VERSION=system
T=models/train
python3 $T/train.py --name draft --seed 1 --b-minutes 24 > $T/runs/draft.out 2>&1 &
python3 $T/train.py --name seed --seed 2 --b-minutes 4 > $T/runs/seed.out 2>&1
python3 $T/train.py --name target --seed 3 --arch target --grow-from seed --lr 3e-3 --b-minutes 50 --max-len 2048 --mix target --tokens 2048 > $T/runs/target.out 2>&1
wait
python3 $T/export.py --run draft --out draft
python3 $T/export.py --run target --out target
python3 $T/evaluate.py --runs draft target --lengths 256 512 1024 2048 --n 40
python3 $T/plot.py draft seed target
node $T/verify.mjs draft target
