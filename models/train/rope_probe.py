#!/usr/bin/env python3
"""Length extension by RoPE base scaling, without training: evaluate a run with other RoPE bases.

  PYENV_VERSION=system python3 models/train/rope_probe.py --run h3 --thetas 10000,20000,40000,80000 --lengths 4080 --n 8

The weights stay as trained; only the rotary base θ (every inverse frequency θ^(-2i/d)) changes. A larger base
slows every rotation, so relative distances up to 4K turn the low-frequency dimensions by angles the model saw
within its trained 2K (the idea behind NTK-aware scaling and Code Llama's base change). This is how the 4K pair
(models/draft-4k, models/target-4k: export.py --rope-theta) was chosen. Greedy, full KV, evaluate.py's samples
(seed 12345, independent of training and of `draft bench ruler`'s seed-0 samples); string_match_all in %.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

torch.set_num_threads(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--thetas", required=True)
    ap.add_argument("--lengths", default="4080")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--tasks", default="niah_single_2,niah_multikey_2,vt,niah_multivalue")
    args = ap.parse_args()
    src = torch.load(os.path.join(lib.HERE, "runs", args.run, "final.pt"), map_location="cpu", weights_only=False)
    tasks = args.tasks.split(",")
    for theta in (float(x) for x in args.thetas.split(",")):
        model = lib.LlamaLM(lib.Cfg(**{**src["cfg"], "rope_theta": theta}))
        model.load_state_dict(src["model"])
        for L in (int(x) for x in args.lengths.split(",")):
            t0 = time.time()
            res = lib.evaluate(model, [L], n=args.n, tasks=tasks, bs=4)
            cells = " ".join(f"{t}={res[(t, L)][1] * 100:.0f}" for t in tasks)
            print(f"[{args.run}] theta={theta:g} L={L} {cells} ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
