#!/usr/bin/env python3
"""Greedy evaluation of trained runs on the 11 task formats (torch eager, KV cache, full KV).

  PYENV_VERSION=system python3 models/train/evaluate.py --runs draft target --lengths 256 512 1024 2048 --n 40

Prints a markdown table (exact sequence match / string_match_all, %) and writes
models/train/results/eval_<run>.json. Fixed evaluation seed (12345), independent of training samples.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

torch.set_num_threads(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--lengths", nargs="+", type=int, default=[256, 512, 1024])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--tasks", nargs="+", default=lib.TASKS)
    ap.add_argument("--ckpt", default="final.pt")
    ap.add_argument("--tag", default="")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    os.makedirs(os.path.join(lib.HERE, "results"), exist_ok=True)
    for run in args.runs:
        src = torch.load(os.path.join(lib.HERE, "runs", run, args.ckpt), map_location="cpu", weights_only=False)
        model = lib.LlamaLM(lib.Cfg(**src["cfg"]))
        model.load_state_dict(src["model"])
        model.to(args.device)
        out = {}
        for L in args.lengths:
            t0 = time.time()
            bs = max(1, min(20, 16384 // L))
            res = lib.evaluate(model, [L], n=args.n, tasks=args.tasks, bs=bs)
            for (task, _), (ex, part) in res.items():
                out.setdefault(task, {})[str(L)] = {"exact": ex, "match_all": part}
            print(f"[{run}] L={L} " + " ".join(f"{t}={res[(t, L)][0] * 100:.0f}/{res[(t, L)][1] * 100:.0f}" for t in args.tasks)
                  + f" ({time.time() - t0:.0f}s)", flush=True)
        path = os.path.join(lib.HERE, "results", f"eval_{run}{args.tag}.json")
        with open(path, "w") as f:
            json.dump({"run": run, "ckpt": args.ckpt, "n": args.n, "seed": 12345, "results": out}, f, indent=1)
        print(f"\n{run}: exact / string_match_all (%), n={args.n} per cell")
        print("| task | " + " | ".join(str(L) for L in args.lengths) + " |")
        print("|---|" + "---|" * len(args.lengths))
        for t in args.tasks:
            print(f"| {t} | " + " | ".join(f"{out[t][str(L)]['exact'] * 100:.0f} / {out[t][str(L)]['match_all'] * 100:.0f}"
                                          for L in args.lengths) + " |")


if __name__ == "__main__":
    main()
