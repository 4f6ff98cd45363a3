#!/usr/bin/env python3
"""Rebuild a training checkpoint (runs/<name>/final.pt) from an exported folder (models/<dir>/onnx/model.onnx).

The shipped pair is committed as ONNX only; its checkpoints live in runs/, which is not committed. A fine-tune
(train.py --init-from <name>) needs final.pt, so this reads the weights back: named initializers map by name,
and the torch exporter's anonymous MatMul weights (Linear weights, stored transposed) map by the name of the
MatMul node that reads them (/layers.{i}/self_attn/q_proj/MatMul -> model.layers.{i}.self_attn.q_proj.weight).
The tied lm head (MatMul by /MatMul on embed_tokens.weight^T) is checked against the embedding, not loaded.
The result is verified against the folder's golden.json (torch-eager prefill logits).

  PYENV_VERSION=system python3 models/train/import_onnx.py --dir target --name target_h3
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

CFG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rope_theta", "rms_norm_eps", "max_position_embeddings")


def load_state(onnx_path):
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state = {k: v for k, v in inits.items() if k.startswith("model.")}
    head = None
    for node in m.graph.node:
        if node.op_type != "MatMul":
            continue
        w = next((x for x in node.input if x in inits and not x.startswith("model.")), None)
        if w is None:
            continue
        hit = re.match(r"^/layers\.(\d+)/(self_attn|mlp)/(\w+_proj)/MatMul$", node.name)
        if hit:
            state[f"model.layers.{hit[1]}.{hit[2]}.{hit[3]}.weight"] = inits[w].T.copy()
        else:
            head = inits[w]
    if head is not None and not np.array_equal(head.T, state["model.embed_tokens.weight"]):
        raise SystemExit("import_onnx: the lm head is not the tied embedding")
    return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="folder under models/ (draft, target)")
    ap.add_argument("--name", required=True, help="run name to write under runs/")
    args = ap.parse_args()
    folder = os.path.join(lib.MODELS, args.dir)
    config = json.load(open(os.path.join(folder, "config.json")))
    cfg = lib.Cfg(**{k: config[k] for k in CFG_KEYS})
    model = lib.LlamaLM(cfg)
    model.load_state_dict(load_state(os.path.join(folder, "onnx", "model.onnx")), strict=True)
    model.eval()
    golden = json.load(open(os.path.join(folder, "golden.json")))
    worst = 0.0
    for case in golden["cases"]:
        prompt = lib.encode(case["text"])
        with torch.no_grad():
            out = model(torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.int64),
                        torch.arange(len(prompt)).unsqueeze(0), *model.empty_past(1))
        got = out[0][0, -1, :16].numpy()
        worst = max(worst, float(np.abs(got - np.array(case["prefill_last_logits_first16"])).max()))
    if worst > golden["tolerance"]:
        raise SystemExit(f"import_onnx: logits differ from golden.json by {worst:.2e}")
    rundir = os.path.join(lib.HERE, "runs", args.name)
    os.makedirs(rundir, exist_ok=True)
    torch.save({"model": model.state_dict(), "cfg": cfg.to_dict(),
                "state": {"step": config.get("draft_train_steps"), "elapsed": 60 * config.get("draft_train_minutes", 0)},
                # the run's own record, so that export.py writes the same provenance into config.json
                "args": {"imported_from": f"models/{args.dir}", "run": config.get("draft_train_run"),
                         "seed": config.get("draft_seed"), "init_from": config.get("draft_init_from"),
                         "grow_from": config.get("draft_grown_from"), "device_name": config.get("draft_train_device")}},
               os.path.join(rundir, "final.pt"))
    print(f"wrote runs/{args.name}/final.pt from models/{args.dir} (run {config.get('draft_train_run')}); "
          f"golden logits max |diff| {worst:.2e} over {len(golden['cases'])} cases")


if __name__ == "__main__":
    main()
