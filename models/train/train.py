#!/usr/bin/env python3
"""Train one model of the pair (one torch thread).

  draft : PYENV_VERSION=system python3 models/train/train.py --name draft --seed 1 --a-max-steps 1500 --b-minutes 14
  seed  : ... --name seed --seed 2 --b-minutes 3             (small model, later grown)
  target: ... --name target --seed 3 --grow-from seed --arch target --b-minutes 35 --max-len 2048 --lr 3e-3

Phase A (skipped when growing): induction warm-up on 128-token copy sequences until the EMA copy
accuracy > 0.9. Phase B: the 11 task formats (answer-only loss), length curriculum, ~4K tokens/step.
Writes models/train/runs/<name>/{ckpt.pt, log.csv}; resumes from ckpt.pt when present.
"""
import argparse
import csv
import json
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

MIX = {"mqar": .2, "dense": .2, "niah_single_1": .04, "niah_single_2": .04, "niah_single_3": .04,
       "niah_multikey_1": .05, "niah_multikey_2": .05, "niah_multikey_3": .05,
       "niah_multivalue": .12, "niah_multiquery": .12, "vt": .19, "cwe": .05, "fwe": .05}
# the target's stage-2 mix: more weight on the multikey family, less on vt/cwe/fwe
MIX_TARGET = {"mqar": .15, "dense": .15, "niah_single_1": .03, "niah_single_2": .03, "niah_single_3": .03,
              "niah_multikey_1": .05, "niah_multikey_2": .05, "niah_multikey_3": .05,
              "niah_multivalue": .2, "niah_multiquery": .2, "vt": .08, "cwe": .03, "fwe": .03}
# stage 1 of phase B: the retrieval family only, until niah_single_2 and niah_multikey_1 are learned
MIX1 = {"mqar": .3, "dense": .3, "niah_single_1": .1, "niah_single_2": .1, "niah_single_3": .1, "niah_multikey_1": .1,
        "niah_multikey_2": .1, "niah_multikey_3": .1, "niah_multivalue": .2, "niah_multiquery": .2}
# fine-tune mix for niah_multivalue (--mix multivalue, used with --init-from target3): multivalue-heavy, every
# other niah task and the dense/mqar retrieval formats kept so nothing regresses
MIX_MV = {"mqar": .08, "dense": .08, "niah_single_1": .03, "niah_single_2": .03, "niah_single_3": .03,
          "niah_multikey_1": .04, "niah_multikey_2": .04, "niah_multikey_3": .04,
          "niah_multivalue": .44, "niah_multiquery": .12, "vt": .03, "cwe": .02, "fwe": .02}
# fine-tune mix for the forward-format vt and the unordered multivalue (--mix vtmv, with --init-from): vt and multivalue
# heavy, every other niah task and the dense/mqar retrieval formats kept so nothing regresses
MIX_VTMV = {"mqar": .07, "dense": .07, "niah_single_1": .03, "niah_single_2": .03, "niah_single_3": .03,
            "niah_multikey_1": .04, "niah_multikey_2": .04, "niah_multikey_3": .05,
            "niah_multivalue": .22, "niah_multiquery": .08, "vt": .30, "cwe": .01, "fwe": .01}
# second fine-tune (--mix mv, from the vtmv run, with --unlikelihood): multivalue heavy, vt and the rest kept
MIX_MV2 = {"mqar": .06, "dense": .06, "niah_single_1": .03, "niah_single_2": .03, "niah_single_3": .03,
           "niah_multikey_1": .05, "niah_multikey_2": .05, "niah_multikey_3": .06,
           "niah_multivalue": .40, "niah_multiquery": .08, "vt": .12, "cwe": .01, "fwe": .01}
ARCHS = {
    "small": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                  head_dim=32, intermediate_size=0),
    "target": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                   head_dim=32, intermediate_size=256),
}


def lengths_for(frac, max_len, min_len=0, lengths=None):
    if lengths:  # fine-tune: the listed lengths, uniform (the 4K fine-tune needs lengths that are not powers of two)
        return lengths, [1] * len(lengths)
    if min_len:  # fine-tune: fixed length range, uniform over the powers of two in [min_len, max_len]
        Ls = [L for L in (256, 512, 1024, 2048) if min_len <= L <= max_len]
        return Ls, [1] * len(Ls)
    if frac < 0.15:
        return [256], [1]
    if frac < 0.35:
        return [256, 512], [.5, .5]
    if max_len >= 2048 and frac >= 0.6:
        return [256, 512, 1024, 2048], [.25, .3, .3, .15]
    return [256, 512, 1024], [.3, .3, .4]


def batch_tasks(rng, L, bs, mix):
    names = list(mix)
    w = [mix[n] for n in names]
    seqs, lms, tasks = [], [], []
    for _ in range(bs):
        t = rng.choices(names, w)[0]
        if t == "dense":
            p, a, am = lib.gen_dense(rng, L)
        elif t == "mqar":
            p, a, am = lib.gen_mqar(rng, L)
        else:
            p, a = lib.gen_task(rng, t, L, train=True)
            a, sets = lib.answer_sets(t, a, rng)
            am = [1] * len(a)
        if t in ("dense", "mqar"):
            sets = [[x] for x in a]
        s = p + a
        seqs.append(s[:-1])
        tg = s[1:]
        lm = [0] * (len(p) - 1) + am
        alt = [[x] for x in tg[:len(p) - 1]] + sets  # acceptable targets per position
        lms.append((tg, lm, alt, len(sets)))
        tasks.append(t)
    n = max(len(s) for s in seqs)
    X = torch.full((bs, n), lib.PAD, dtype=torch.int64)
    Y = torch.full((bs, n), lib.PAD, dtype=torch.int64)
    M = torch.zeros(bs, n)
    ALT = torch.full((bs, n, MAX_ALT), -1, dtype=torch.int64)
    for i, (s, (tg, lm, alt, n_answer)) in enumerate(zip(seqs, lms)):
        X[i, :len(s)] = torch.tensor(s)
        Y[i, :len(tg)] = torch.tensor(tg)
        M[i, :len(lm)] = torch.tensor(lm, dtype=torch.float32)
        # this sample's own answer length (runs up to h3 used the batch's last sample's, so a longer answer lost the
        # set targets of its first positions: see MODEL_CARD.md)
        for j in range(len(tg) - n_answer, len(tg)):
            ALT[i, j, :len(alt[j])] = torch.tensor(alt[j])
    return X, Y, M, tasks, ALT


def unlikelihood(logits, X, ALT, M):
    """For unordered answers (several acceptable targets): -log(1 - p(v)) for every value v already given in this
    answer, so the model learns not to repeat a value (the set loss alone left it repeating the likeliest one).
    Vectorised (one pass, any device): the tokens given at answer position j are X[start+1 .. j], start being the
    first position of j's run of answer positions; a one-hot cumulative sum gives them for every j at once. Each
    distinct given token counts once (the loop counted repeats again; no task's answer repeats a token)."""
    multi = (ALT[..., 0] >= 0) & (M > 0)
    if not bool(multi.any()):
        return logits.new_zeros(())
    n = multi.shape[1]
    idx = torch.arange(n, device=multi.device).expand_as(multi)
    prev = torch.nn.functional.pad(multi[:, :-1], (1, 0), value=False)
    start = torch.where(multi & ~prev, idx, torch.full_like(idx, -1)).cummax(dim=1).values.clamp(min=0)
    counts = torch.nn.functional.one_hot(X, logits.shape[-1]).cumsum(dim=1)  # integer counts, whatever the logits' dtype
    given = (counts - counts.gather(1, start.unsqueeze(-1).expand_as(counts))) > 0
    given = given & multi.unsqueeze(-1)
    probs = torch.softmax(logits, dim=-1)
    per_pos = -(torch.log1p(-probs.clamp(max=1 - 1e-6)) * given).sum(-1)
    count = int(given.any(-1).sum())
    return per_pos.sum() / max(1, count)


def unlikelihood_reference(logits, X, ALT, M):
    """The loop the vectorised loss replaced (kept to check it: python3 models/train/train.py --check)."""
    multi = (ALT[..., 0] >= 0) & (M > 0)
    probs = torch.softmax(logits, dim=-1)
    total = logits.new_zeros(())
    count = 0
    for b, j in multi.nonzero().tolist():
        start = j
        while start - 1 >= 0 and multi[b, start - 1]:
            start -= 1
        given = X[b, start + 1:j + 1]  # answer tokens fed so far (the input at start is the prompt's last token)
        if given.numel() == 0:
            continue
        total = total - torch.log1p(-probs[b, j, given].clamp(max=1 - 1e-6)).sum()
        count += 1
    return total / max(1, count)


MAX_ALT = 4


def set_loss(logits, Y, ALT):
    """Per-position -log p(target); where ALT lists several acceptable targets, -log of their summed probability."""
    logp = torch.log_softmax(logits, dim=-1)
    one = logp.gather(-1, Y.unsqueeze(-1)).squeeze(-1)
    if ALT is None:
        return -one, None
    multi = ALT[..., 0] >= 0
    g = logp.gather(-1, ALT.clamp(min=0))
    g = g.masked_fill(ALT < 0, float("-inf"))
    lse = torch.logsumexp(g, dim=-1)
    ok = (ALT == logits.argmax(-1, keepdim=True)).any(-1)
    return -torch.where(multi, lse, one), torch.where(multi, ok, logits.argmax(-1) == Y)


def batch_copy(rng, bs):
    X, Y, M = [], [], []
    for _ in range(bs):
        ids, lm = lib.gen_copy(rng)
        X.append(ids[:-1])
        Y.append(ids[1:])
        M.append(lm[:-1])
    return torch.tensor(X), torch.tensor(Y), torch.tensor(M, dtype=torch.float32), None, None


def check():
    """Self-checks of the batch builder and the losses on every mix (exit 1 on a failure): every answer position
    carries its acceptable-target set, and the vectorised no-repeat loss equals the loop on random logits."""
    rng = random.Random(3)
    torch.manual_seed(3)
    worst, uncovered = 0.0, 0
    for L in (256, 512):
        for mix in (MIX, MIX_TARGET, MIX1, MIX_MV, MIX_VTMV, MIX_MV2):
            X, Y, M, tasks, ALT = batch_tasks(rng, L, 8, mix)
            uncovered += int(((M > 0) & (ALT[..., 0] < 0)).sum())
            logits = torch.randn(X.shape[0], X.shape[1], lib.V) * 3
            a, b = float(unlikelihood(logits, X, ALT, M)), float(unlikelihood_reference(logits, X, ALT, M))
            worst = max(worst, abs(a - b) / max(1e-12, abs(b)))
    print(f"answer positions without their target set: {uncovered}")
    print(f"unlikelihood: vectorised vs loop, worst relative difference {worst:.1e}")
    sys.exit(0 if worst < 1e-5 and uncovered == 0 else 1)


def main():
    if "--check" in sys.argv:
        check()
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--arch", default="small")
    ap.add_argument("--grow-from", default=None)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--a-max-steps", type=int, default=2500)
    ap.add_argument("--b-minutes", type=float, default=10)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=3072)
    ap.add_argument("--mix", default="default", choices=["default", "target", "multivalue", "vtmv", "mv"])
    ap.add_argument("--init-from", default=None, help="fine-tune: start phase B (stage 2) from runs/<run>/final.pt weights, fresh optimizer")
    ap.add_argument("--min-len", type=int, default=0, help="fine-tune: sample lengths only in [min-len, max-len]")
    ap.add_argument("--copy-aux", type=int, default=0, help="phase B: add the phase-A copy loss on this many 128-token sequences every step (keeps induction alive)")
    ap.add_argument("--deepen", type=int, default=0, help="with --init-from: add this many zero-output layers on top")
    ap.add_argument("--unlikelihood", type=float, default=0.0, help="weight of the no-repeat loss on unordered answers")
    ap.add_argument("--lengths", default=None, help="fine-tune: comma-separated sample lengths, drawn uniformly (overrides --min-len/--max-len)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="torch device (cuda for the GPU runs of gpu_train.sh)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")] if args.lengths else None
    dev = torch.device(args.device)
    args.device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"

    rundir = os.path.join(lib.HERE, "runs", args.name)
    os.makedirs(rundir, exist_ok=True)
    ckpt_path = os.path.join(rundir, "ckpt.pt")
    cfg = lib.Cfg(**ARCHS[args.arch])
    state = {"phase": "A", "step": 0, "a_steps": 0, "b_elapsed": 0.0, "elapsed": 0.0}
    if args.grow_from:
        src = torch.load(os.path.join(lib.HERE, "runs", args.grow_from, "final.pt"), map_location="cpu", weights_only=False)
        small = lib.LlamaLM(lib.Cfg(**src["cfg"]))
        small.load_state_dict(src["model"])
        model = lib.grow(small, cfg, args.seed)
        state["phase"] = "B"
    elif args.init_from:
        src = torch.load(os.path.join(lib.HERE, "runs", args.init_from, "final.pt"), map_location="cpu", weights_only=False)
        cfg = lib.Cfg(**src["cfg"])
        model = lib.LlamaLM(cfg)
        model.load_state_dict(src["model"])
        if args.deepen > 0:
            model = lib.deepen(model, args.deepen, args.seed)
            cfg = model.c
        state["phase"] = "B"
        state["stage"] = 2
    else:
        model = lib.init_model(cfg, args.seed)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    resumed = False
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        resumed = True
        state["b_minutes"] = args.b_minutes
    print(f"[{args.name}] device {args.device_name} params {lib.n_params(model)} cfg {cfg.to_dict()} resumed={resumed} state={state}", flush=True)
    rng = random.Random(args.seed * 1000003 + state["step"])
    torch.manual_seed(args.seed + state["step"])
    logf = open(os.path.join(rundir, "log.csv"), "a", newline="")
    log = csv.writer(logf)
    if not resumed:
        log.writerow(["step", "minutes", "phase", "L", "lr", "loss", "tok_acc", "copy_ema", "task_ema"])
    ema = {}
    copy_ema = 0.0
    last_ck = time.time()
    t_prev = time.time()
    b_total = args.b_minutes * 60
    if state["phase"] == "B" and args.b_minutes <= 0:
        state["phase"] = "done"
    while state["phase"] != "done":
        step = state["step"]
        if state["phase"] == "A":
            X, Y, M, tasks, ALT = batch_copy(rng, 32)
            L = 128
            lr = args.lr * min(1.0, (step + 1) / 50)
        else:
            frac = state["b_elapsed"] / b_total
            if frac >= 1.0:
                break
            stage1 = state.get("stage", 1) == 1
            if stage1 and ((ema.get("niah_single_2", 0) > 0.85 and ema.get("niah_multikey_1", 0) > 0.7) or frac > 0.5):
                state["stage"] = 2
                stage1 = False
                print(f"[{args.name}] stage 2 (full mix) at step {step}, {state['elapsed'] / 60:.1f} min", flush=True)
            Ls, w = lengths_for(min(frac, 0.34) if stage1 else frac, args.max_len, args.min_len, lengths)
            L = rng.choices(Ls, w)[0]
            X, Y, M, tasks, ALT = batch_tasks(rng, L, max(1, args.tokens // L), MIX1 if stage1 else {"target": MIX_TARGET, "multivalue": MIX_MV, "vtmv": MIX_VTMV, "mv": MIX_MV2}.get(args.mix, MIX))
            bstep = step - state["a_steps"]
            lr = args.lr * min(1.0, (bstep + 1) / 50) * (1.0 if frac < 0.75 else max(0.05, (1 - frac) / 0.25))
        X, Y, M = X.to(dev), Y.to(dev), M.to(dev)
        ALT = ALT.to(dev) if ALT is not None else None
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        logits = model.logits(X)
        lossv, okv = set_loss(logits, Y, ALT)
        loss = (lossv * M).sum() / M.sum()
        if ALT is not None and args.unlikelihood > 0:
            loss = loss + args.unlikelihood * unlikelihood(logits, X, ALT, M)
        if tasks is not None and args.copy_aux > 0:
            Xc, Yc, Mc, _, _ = batch_copy(rng, args.copy_aux)
            Xc, Yc, Mc = Xc.to(dev), Yc.to(dev), Mc.to(dev)
            lc = torch.nn.functional.cross_entropy(model.logits(Xc).reshape(-1, lib.V), Yc.reshape(-1), reduction="none").view_as(Mc)
            lcv = (lc * Mc).sum() / Mc.sum()
            loss = loss + lcv
            copy_ema = 0.95 * copy_ema + 0.05 * float(torch.exp(-lcv.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            corr = (okv if okv is not None else logits.argmax(-1) == Y).float()
            tok_acc = float((corr * M).sum() / M.sum())
            if tasks is None:
                copy_ema = 0.95 * copy_ema + 0.05 * tok_acc
            else:
                allc = ((corr * M).sum(1) == M.sum(1)).tolist()
                for t, c in zip(tasks, allc):
                    ema[t] = 0.95 * ema.get(t, 0.0) + 0.05 * float(c)
        now = time.time()
        dt = now - t_prev
        t_prev = now
        state["elapsed"] += dt
        if state["phase"] == "B":
            state["b_elapsed"] += dt
        state["step"] = step + 1
        if state["phase"] == "A":
            state["a_steps"] = step + 1
            if (copy_ema > 0.9 and step > 100) or step + 1 >= args.a_max_steps:
                print(f"[{args.name}] phase A done at step {step + 1}, copy_ema {copy_ema:.3f}, {state['elapsed'] / 60:.1f} min", flush=True)
                state["phase"] = "B" if args.b_minutes > 0 else "done"
        if step % 10 == 0:
            te = " ".join(f"{t[:6] + t[-1]}={v:.2f}" for t, v in sorted(ema.items()))
            log.writerow([step, round(state["elapsed"] / 60, 3), "A" if tasks is None else "B", L, f"{lr:.2e}",
                          round(float(loss.detach()), 4), round(tok_acc, 4), round(copy_ema, 4), json.dumps({k: round(v, 3) for k, v in ema.items()})])
            logf.flush()
            if step % 50 == 0:
                print(f"[{args.name}] step {step} {state['elapsed'] / 60:.1f}m L={L} loss {float(loss.detach()):.3f} acc {tok_acc:.2f} copy {copy_ema:.2f} | {te}", flush=True)
        if now - last_ck > 60:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "cfg": cfg.to_dict()}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
            last_ck = now
    # final weights on the CPU, so that export/evaluate load them anywhere
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "cfg": cfg.to_dict(), "state": state,
                "args": vars(args)},
               os.path.join(rundir, "final.pt"))
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "cfg": cfg.to_dict()}, ckpt_path)
    print(f"[{args.name}] done: {state['step']} steps, {state['elapsed'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
