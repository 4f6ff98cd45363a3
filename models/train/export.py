#!/usr/bin/env python3
"""Export a trained run to a transformers.js folder (models/<out>/) with the project's ONNX I/O contract.

  PYENV_VERSION=system python3 models/train/export.py --run draft --out draft
  PYENV_VERSION=system python3 models/train/export.py --run target --out target

Writes config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
task_format.json, onnx/model.onnx and golden.json (torch-eager greedy answers for verify.mjs).
"""
import argparse
import json
import os
import random
import sys

import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

torch.set_num_threads(1)
OPSET = 14

NOTES = (
    "Symbolic RULER analogue for the trained pair (models/train). Tokens: filler w00..w63 (64), key k00..k95 (96), "
    "value v00..v95 (96); markers Q A V C F; specials <unk> <s> </s> <pad>. No BOS is prepended (add_bos_token false, "
    "no post-processor); the prompt is exactly the space-joined words. Sample length L = total prompt tokens "
    "(haystack with facts + question). Facts (needles / vt pairs) are inserted at distinct random gaps of the "
    "haystack, never adjacent (at least one haystack word before and between any two facts); the order of insertion "
    "is the fact order where it matters (multivalue, vt). Keys, values and vt variables are distinct within a sample "
    "unless stated. Haystacks: niah_single_1 = a random 16-word filler pattern repeated cyclically; niah_single_2 = "
    "i.i.d. uniform filler; niah_single_3 = i.i.d. filler with each word replaced with probability 0.1 by a random "
    "value-class noise word (never one of the sample's needle values). niah_multikey_1 = 1 queried needle + 3 "
    "distractor needles (other keys, other values) in i.i.d. filler; niah_multikey_2 = 1 + 15 distractors in i.i.d. "
    "filler; niah_multikey_3 = 1 + 31 distractors in the noisy haystack of niah_single_3; needle order random. "
    "niah_multivalue: one key inserted 4 times with 4 distinct values, question 'Q {key} A', answer the 4 values in "
    "any order (a set, as RULER scores it: exact match compares the sorted values; training used a set loss). niah_multiquery: 4 needles (distinct keys) inserted in random order, question 'Q k1 k2 k3 k4 A', "
    "answer the 4 values in the asked order. vt: 1 chain of 5 variables (key class), written forward: '{value} x1', "
    "then 'x1 x2', 'x2 x3', 'x3 x4', 'x4 x5' (read 'x2 = x1' as 'x1 x2') inserted in this order into i.i.d. filler; "
    "question 'V {value} A'; answer 'x1 x2 x3 x4 x5' (training also used 3-6 variables and a second distractor chain "
    "with another value). cwe: haystack of L-2 "
    "key-class words only: 3 common words with exact counts round(0.15 H), round(0.10 H), round(0.06 H) (H = L - 2), "
    "the rest i.i.d. uniform over the other 93 keys, shuffled; question 'C A'; answer the 3 common words by "
    "descending count (k = 3). fwe: haystack of L-2 value-class words: a random ranking of the 96 values, word of "
    "rank r (1-based) appears floor(H r^-2 / sum_{s=1..96} s^-2) times (Zipf, alpha 2), the remainder i.i.d. uniform "
    "over ranks >= 4, shuffled; question 'F A'; answer the top 3 ranks in order. Every answer ends with '</s>' "
    "(answer_end); score with string_match_all (tokens contained) and also report exact sequence match. "
    "Trained lengths 256-1024 (draft) and 256-2048 (target); max_position_embeddings 4096. Max new tokens: 8 "
    "suffices for every task (answers are 1-5 tokens + </s>)."
)


def task_format():
    return {
        "version": 1,
        "style": "symbolic",
        "vocabulary": {"filler": lib.FILLER, "key": lib.KEYS, "value": lib.VALUES},
        "templates": {
            "needle": "{key} {value}",
            "question": "Q {keys} A",
            "answer": "{values}",
            "vt_assign": "{value} {var}",
            "vt_chain": "{prev} {var}",
            "vt_question": "V {value} A",
            "cwe_question": "C A",
            "fwe_question": "F A",
        },
        "join": " ",
        "answer_end": "</s>",
        "tasks": list(lib.TASKS),
        "notes": NOTES,
        "params": {
            "niah_multikey_distractors": {"niah_multikey_1": 3, "niah_multikey_2": 15, "niah_multikey_3": 31},
            "niah_single_haystack": {"niah_single_1": "pattern16", "niah_single_2": "iid", "niah_single_3": "noisy_values_0.1"},
            "niah_multikey_3_haystack": "noisy_values_0.1",
            "multivalue_values": 4,
            "unordered_answers": sorted(lib.UNORDERED),
            "multiquery_queries": 4,
            "vt_chains": 1,
            "vt_vars": 5,
            "cwe_k": 3,
            "cwe_shares": [0.15, 0.10, 0.06],
            "fwe_k": 3,
            "fwe_zipf_alpha": 2.0,
            "bos": False,
            "max_new_tokens": 8,
        },
    }


def tokenizer_json():
    added = [{"id": lib.VOCAB[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in lib.SPECIALS]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
        "model": {"type": "WordLevel", "vocab": lib.VOCAB, "unk_token": "<unk>"},
    }


def write_json(path, obj, indent=2):
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def export(model, out_dir, extra):
    c = model.c
    os.makedirs(os.path.join(out_dir, "onnx"), exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rope_theta": c.rope_theta,
        "rope_scaling": None,
        "rms_norm_eps": c.rms_norm_eps,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": lib.BOS,
        "eos_token_id": lib.EOS,
        "pad_token_id": lib.PAD,
        "torch_dtype": "float32",
        "use_cache": True,
        "transformers_version": "4.46.0",
        "draft_attention": "decomposed",
        "draft_attention_only": c.intermediate_size == 0,
        **extra,
    }
    write_json(os.path.join(out_dir, "config.json"), config)
    write_json(os.path.join(out_dir, "generation_config.json"),
               {"bos_token_id": lib.BOS, "eos_token_id": lib.EOS, "pad_token_id": lib.PAD, "do_sample": False,
                "max_new_tokens": 8, "transformers_version": "4.46.0"})
    write_json(os.path.join(out_dir, "tokenizer.json"), tokenizer_json(), indent=1)
    write_json(os.path.join(out_dir, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": c.max_position_embeddings,
        # plain concatenation of message contents (the models know no chat format; prompts are task texts)
        "chat_template": "{% for message in messages %}{{ message['content'] }}{% if not loop.last %} {% endif %}{% endfor %}"})
    write_json(os.path.join(out_dir, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"})
    write_json(os.path.join(out_dir, "task_format.json"), task_format())

    L = c.num_hidden_layers
    g = torch.Generator().manual_seed(7)
    b, p, s = 1, 3, 2
    ex = [torch.randint(4, c.vocab_size, (b, s), generator=g), torch.ones(b, p + s, dtype=torch.int64),
          torch.arange(p, p + s, dtype=torch.int64).unsqueeze(0)]
    ex += [torch.randn(b, c.num_key_value_heads, p, c.head_dim, generator=g) for _ in range(2 * L)]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(L):
        for kv in ("key", "value"):
            a, o = f"past_key_values.{i}.{kv}", f"present.{i}.{kv}"
            in_names.append(a)
            out_names.append(o)
            dyn[a] = {0: "batch_size", 2: "past_sequence_length"}
            dyn[o] = {0: "batch_size", 2: "total_sequence_length"}
    path = os.path.join(out_dir, "onnx", "model.onnx")
    model.eval()
    torch.onnx.export(model, tuple(ex), path, input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                      opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))

    # golden: one prompt per task at 256 and at 1024 tokens, torch-eager greedy (KV cache) incl. </s>
    rng = random.Random(4242)
    cases = []
    for Ln in (256, 1024):
        for task in lib.TASKS:
            prompt, ans = lib.gen_task(rng, task, Ln)
            with torch.no_grad():
                out = model(torch.tensor([prompt]), torch.ones(1, Ln, dtype=torch.int64), torch.arange(Ln).unsqueeze(0),
                            *model.empty_past(1))
            gen = lib.greedy(model, [prompt], 8)[0]
            cases.append({"task": task, "length": Ln, "text": lib.decode(prompt), "answer": lib.decode(ans[:-1]),
                          "prefill_last_logits_first16": [round(float(x), 6) for x in out[0][0, -1, :16]],
                          "greedy": gen + ([lib.EOS] if len(gen) < 8 else []), "greedy_text": lib.decode(gen)})
    write_json(os.path.join(out_dir, "golden.json"), {
        "about": "torch-eager references from models/train/export.py: prompt text (space-joined tokens, no BOS), "
                 "prefill logits of the last prompt token (first 16), greedy ids with KV cache (ends with </s> id "
                 "when generated within 8 tokens); checked by models/train/verify.mjs through onnxruntime-node",
        "max_new_tokens": 8, "eos": lib.EOS, "tolerance": 1e-3, "cases": cases}, indent=None)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt", default="final.pt")
    ap.add_argument("--rope-theta", type=float, default=None,
                    help="export with this RoPE base instead of the trained one (length extension by base scaling: "
                         "the same weights, every rotation frequency lowered; config.json records both)")
    args = ap.parse_args()
    src = torch.load(os.path.join(lib.HERE, "runs", args.run, args.ckpt), map_location="cpu", weights_only=False)
    cfg = dict(src["cfg"])
    trained_theta = cfg["rope_theta"]
    if args.rope_theta is not None:
        cfg["rope_theta"] = args.rope_theta
    model = lib.LlamaLM(lib.Cfg(**cfg))
    model.load_state_dict(src["model"])
    out_dir = os.path.join(lib.MODELS, args.out)
    st = src.get("state", {})
    a = src.get("args", {})
    p = export(model, out_dir, {"draft_trained": True, "draft_train_run": args.run, "draft_seed": a.get("seed"),
                                "draft_grown_from": a.get("grow_from"), "draft_init_from": a.get("init_from"),
                                "draft_train_steps": st.get("step"),
                                "draft_train_minutes": round(st.get("elapsed", 0) / 60, 2),
                                # only runs made since --device existed record it (older exports keep their config)
                                **({"draft_train_device": a["device_name"]} if a.get("device_name") else {}),
                                **({"draft_trained_rope_theta": trained_theta} if args.rope_theta is not None else {})})
    print("wrote", out_dir, "params", lib.n_params(model), "onnx bytes", os.path.getsize(p))


if __name__ == "__main__":
    main()
