"""Shared code for the trained draft/target pair: vocabulary, tokenizer files, task generators,
Llama-style model (RoPE, RMSNorm, GQA via expand+reshape, optional SwiGLU MLP, tied embeddings),
growth (function-preserving widening/deepening), greedy evaluation and ONNX export.

Debian torch 1.13 (PYENV_VERSION=system python3), one thread per process.
"""
import json
import math
import os
import random
import zlib

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, ".."))

# ------------------------------------------------------------------------------------------
# Vocabulary: one shared WordLevel tokenizer, whitespace pre-tokenizer.
# ------------------------------------------------------------------------------------------
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
MARKERS = ["Q", "A", "V", "C", "F"]
FILLER = ["w%02d" % i for i in range(64)]
KEYS = ["k%02d" % i for i in range(96)]
VALUES = ["v%02d" % i for i in range(96)]
TOKENS = SPECIALS + MARKERS + FILLER + KEYS + VALUES
VOCAB = {t: i for i, t in enumerate(TOKENS)}
V = len(TOKENS)
EOS = VOCAB["</s>"]
BOS = VOCAB["<s>"]
PAD = VOCAB["<pad>"]
TQ, TA, TV, TC, TF = (VOCAB[m] for m in MARKERS)
FIL = [VOCAB[t] for t in FILLER]
KEY = [VOCAB[t] for t in KEYS]
VAL = [VOCAB[t] for t in VALUES]
KEYSET = set(KEY)

TASKS = ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
         "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe"]


def encode(text):
    return [VOCAB.get(t, 0) for t in text.split()]


def decode(ids):
    return " ".join(TOKENS[i] for i in ids)


# ------------------------------------------------------------------------------------------
# Task generators (exactly the task_format.json semantics; see NOTES below).
# Every sample: prompt ids of total length L (haystack with facts + question), answer ids
# (answer tokens followed by </s>).
# ------------------------------------------------------------------------------------------
def place_facts(rng, hay, facts):
    """Insert facts (lists of ids) in the given order at random, pairwise non-adjacent gaps of hay.
    Gap g means "before hay[g]"; distinct gaps in 1..len(hay)-1 -> at least one haystack word
    between two facts and before the first one."""
    n = len(hay)
    gaps = sorted(rng.sample(range(1, n), len(facts)))
    out = []
    prev = 0
    for g, f in zip(gaps, facts):
        out += hay[prev:g]
        out += f
        prev = g
    out += hay[prev:]
    return out


def filler_iid(rng, n):
    return [rng.choice(FIL) for _ in range(n)]


def filler_pattern(rng, n):
    pat = [rng.choice(FIL) for _ in range(16)]
    return [pat[i % 16] for i in range(n)]


def filler_noisy(rng, n, avoid):
    """i.i.d. filler with 10% of the words replaced by value-class noise words (never one in avoid)."""
    pool = [v for v in VAL if v not in avoid]
    return [rng.choice(pool) if rng.random() < 0.1 else rng.choice(FIL) for _ in range(n)]


def gen_niah(rng, L, task):
    n_dis = {"niah_single_1": 0, "niah_single_2": 0, "niah_single_3": 0,
             "niah_multikey_1": 3, "niah_multikey_2": 15, "niah_multikey_3": 31}[task]
    n_dis = min(n_dis, max(0, (L - 16) // 8 - 1))
    keys = rng.sample(KEY, 1 + n_dis)
    vals = rng.sample(VAL, 1 + n_dis)
    needles = [[k, v] for k, v in zip(keys, vals)]
    rng.shuffle(needles)
    q = [TQ, keys[0], TA]
    hlen = L - len(q) - 2 * len(needles)
    if task == "niah_single_1":
        hay = filler_pattern(rng, hlen)
    elif task in ("niah_single_3", "niah_multikey_3"):
        hay = filler_noisy(rng, hlen, set(vals))
    else:
        hay = filler_iid(rng, hlen)
    return place_facts(rng, hay, needles) + q, [vals[0], EOS]


def gen_multivalue(rng, L):
    k = rng.choice(KEY)
    vals = rng.sample(VAL, 4)
    q = [TQ, k, TA]
    hay = filler_iid(rng, L - len(q) - 8)
    return place_facts(rng, hay, [[k, v] for v in vals]) + q, vals + [EOS]


def gen_multiquery(rng, L, nq=4):
    keys = rng.sample(KEY, nq)
    vals = rng.sample(VAL, nq)
    order = list(range(nq))
    rng.shuffle(order)  # insertion order is random; asked order is random too
    q = [TQ] + [keys[i] for i in range(nq)] + [TA]
    hay = filler_iid(rng, L - len(q) - 2 * nq)
    return place_facts(rng, hay, [[keys[i], vals[i]] for i in order]) + q, vals + [EOS]


def gen_vt(rng, L, nvars=5, nchains=1):
    allv = rng.sample(KEY, nvars * nchains)
    vals = rng.sample(VAL, nchains)
    chains = []
    for c in range(nchains):
        vs = allv[c * nvars:(c + 1) * nvars]
        # forward format: '{value} {x1}', then '{x_(i-1)} {x_i}' -- every hop is one induction step
        facts = [[vals[c], vs[0]]] + [[vs[i - 1], vs[i]] for i in range(1, nvars)]
        chains.append((vs, facts))
    # interleave chains while keeping each chain in order
    seq = []
    idx = [0] * nchains
    while any(idx[c] < nvars for c in range(nchains)):
        c = rng.choice([c for c in range(nchains) if idx[c] < nvars])
        seq.append(chains[c][1][idx[c]])
        idx[c] += 1
    q = [TV, vals[0], TA]
    hay = filler_iid(rng, L - len(q) - 2 * len(seq))
    return place_facts(rng, hay, seq) + q, chains[0][0] + [EOS]


def gen_cwe(rng, L):
    hlen = L - 2
    common = rng.sample(KEY, 3)
    counts = [round(hlen * f) for f in (0.15, 0.10, 0.06)]
    rest = [k for k in KEY if k not in common]
    hay = []
    for w, c in zip(common, counts):
        hay += [w] * c
    hay += [rng.choice(rest) for _ in range(hlen - len(hay))]
    rng.shuffle(hay)
    return hay + [TC, TA], common + [EOS]


ZIPF = [r ** -2.0 for r in range(1, 97)]
ZSUM = sum(ZIPF)


def gen_fwe(rng, L):
    hlen = L - 2
    ranked = rng.sample(VAL, 96)
    hay = []
    for r, w in enumerate(ranked):
        hay += [w] * int(hlen * ZIPF[r] / ZSUM)
    tail = ranked[3:]
    hay += [rng.choice(tail) for _ in range(hlen - len(hay))]
    rng.shuffle(hay)
    return hay + [TF, TA], ranked[:3] + [EOS]


def gen_dense(rng, L):
    """Training-only dense retrieval: a haystack with N needles followed by several question blocks
    'Q k A v </s>' (the first block is the eval format). Returns prompt (ends with the first 'Q k A'),
    continuation and its loss mask (1 on every answer value and </s>)."""
    n = {256: 8, 512: 12, 1024: 20, 2048: 32}.get(L, 8)
    m = min(n, 8)
    keys = rng.sample(KEY, n)
    vals = rng.sample(VAL, n)
    asked = rng.sample(range(n), m)
    qlen = 3 + 5 * (m - 1)
    hlen = L - qlen - 2 * n + 5 * (m - 1)  # prompt length L counts the haystack + first question only
    hay = filler_noisy(rng, hlen, set(vals)) if rng.random() < 0.3 else filler_iid(rng, hlen)
    prompt = place_facts(rng, hay, [[k, v] for k, v in zip(keys, vals)]) + [TQ, keys[asked[0]], TA]
    cont, mask = [vals[asked[0]], EOS], [1, 1]
    for i in asked[1:]:
        cont += [TQ, keys[i], TA, vals[i], EOS]
        mask += [0, 0, 0, 1, 1]
    return prompt[:L - 0], cont, mask


def gen_mqar(rng, L):
    """Training-only associative recall (keeps the induction circuit alive under answer-only loss):
    a haystack with N needles, then 8 recall pairs 'k v' of random needles; loss on each recalled v.
    Returns prompt, continuation, loss mask like gen_dense."""
    n = {256: 8, 512: 12, 1024: 20, 2048: 32}.get(L, 8)
    m = 8
    keys = rng.sample(KEY, n)
    vals = rng.sample(VAL, n)
    asked = [rng.randrange(n) for _ in range(m)]
    hlen = L - 2 * n - 1
    hay = filler_noisy(rng, hlen, set(vals)) if rng.random() < 0.3 else filler_iid(rng, hlen)
    prompt = place_facts(rng, hay, [[k, v] for k, v in zip(keys, vals)]) + [keys[asked[0]]]
    cont, mask = [vals[asked[0]]], [1]
    for i in asked[1:]:
        cont += [rng.choice(FIL), keys[i], vals[i]]
        mask += [0, 0, 1]
    return prompt, cont, mask


def gen_task(rng, task, L, train=False):
    if task.startswith("niah_single") or task.startswith("niah_multikey"):
        return gen_niah(rng, L, task)
    if task == "niah_multivalue":
        return gen_multivalue(rng, L)
    if task == "niah_multiquery":
        return gen_multiquery(rng, L)
    if task == "vt":
        if train:
            return gen_vt(rng, L, nvars=rng.choice([3, 4, 5, 5, 6]), nchains=rng.choice([1, 1, 2]))
        return gen_vt(rng, L)
    if task == "cwe":
        return gen_cwe(rng, L)
    if task == "fwe":
        return gen_fwe(rng, L)
    raise ValueError(task)


def gen_copy(rng, L=128):
    """Phase A: random tokens with a repeated random segment (12-42 tokens); loss on the copy."""
    seg = rng.randint(12, 42)
    pool = FIL + KEY + VAL
    s = [rng.choice(pool) for _ in range(seg)]
    pre = rng.randint(0, L - 2 * seg)
    mid = rng.randint(0, L - 2 * seg - pre)
    post = L - 2 * seg - pre - mid
    ids = [rng.choice(pool) for _ in range(pre)] + s + [rng.choice(pool) for _ in range(mid)] + s + \
        [rng.choice(pool) for _ in range(post)]
    start = pre + seg + mid  # second copy starts here; predict positions start+1 .. start+seg-1
    lmask = [0] * L
    for p in range(start, start + seg - 1):
        lmask[p] = 1  # input at p predicts ids[p+1]
    return ids, lmask


# ------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------
class Cfg:
    def __init__(self, **kw):
        self.vocab_size = V
        self.hidden_size = 64
        self.intermediate_size = 0  # 0 = attention-only
        self.num_hidden_layers = 2
        self.num_attention_heads = 2
        self.num_key_value_heads = 2
        self.head_dim = 32
        self.rope_theta = 10000.0
        self.rms_norm_eps = 1e-6
        self.max_position_embeddings = 4096
        self.__dict__.update(kw)

    def to_dict(self):
        return dict(self.__dict__)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Rotary(nn.Module):
    def __init__(self, head_dim, theta):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids):
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.groups = self.nh // self.nkv
        self.q_proj = nn.Linear(c.hidden_size, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, c.hidden_size, bias=False)

    def repeat_kv(self, x):
        if self.groups == 1:
            return x
        b, nkv, t, hd = x.shape
        return x.unsqueeze(2).expand(b, nkv, self.groups, t, hd).reshape(b, nkv * self.groups, t, hd)

    def forward(self, x, cos, sin, mask, past_k, past_v):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = torch.cat((past_k, k), dim=2)
        v = torch.cat((past_v, v), dim=2)
        scores = torch.matmul(q, self.repeat_kv(k).transpose(-1, -2)) / math.sqrt(self.hd)
        scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, self.repeat_kv(v))
        out = out.transpose(1, 2).reshape(b, s, self.nh * self.hd)
        return self.o_proj(out), (k, v)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        if c.intermediate_size > 0:
            self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
            self.mlp = MLP(c)
        else:
            self.mlp = None

    def forward(self, x, cos, sin, mask, pk, pv):
        h, present = self.self_attn(self.input_layernorm(x), cos, sin, mask, pk, pv)
        x = x + h
        if self.mlp is not None:
            x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.rotary = Rotary(c.head_dim, c.rope_theta)


class LlamaLM(nn.Module):
    """Tied embeddings. forward(input_ids, attention_mask, position_ids, *past) -> (logits, *presents).
    Mask (index based): new token j sees cache slot t iff attention_mask[t]==1 and t <= P + j."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        m = self.model
        x = m.embed_tokens(input_ids)
        s = input_ids.shape[1]
        total = attention_mask.shape[1]
        p = total - s
        cos, sin = m.rotary(position_ids)
        dev = input_ids.device
        key_idx = torch.arange(total, device=dev).unsqueeze(0)
        q_idx = torch.arange(s, device=dev).unsqueeze(1) + p
        allowed = (key_idx <= q_idx).unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] == 1)
        mask = torch.where(allowed, torch.tensor(0.0, device=dev), torch.tensor(torch.finfo(torch.float32).min, device=dev))
        presents = []
        for i, layer in enumerate(m.layers):
            x, (k, v) = layer(x, cos, sin, mask, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        logits = torch.matmul(m.norm(x), m.embed_tokens.weight.t())
        return (logits, *presents)

    def empty_past(self, b=1):
        c = self.c
        dev = self.model.embed_tokens.weight.device
        return [torch.zeros(b, c.num_key_value_heads, 0, c.head_dim, device=dev) for _ in range(2 * c.num_hidden_layers)]

    def logits(self, ids):
        b, s = ids.shape
        pos = torch.arange(s, device=ids.device).unsqueeze(0).expand(b, s)
        return self.forward(ids, torch.ones(b, s, dtype=torch.int64, device=ids.device), pos, *self.empty_past(b))[0]


def init_model(c, seed):
    torch.manual_seed(seed)
    m = LlamaLM(c)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif "embed" in name:
                p.normal_(0, 0.5)
            else:
                p.normal_(0, 1.0 / math.sqrt(p.shape[1]))
    return m


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------
# Growth: small (d, L layers, H heads = Hkv, no MLP) -> big (D, L2 >= L, H2 heads, Hkv2 kv heads, MLP).
# Function preserving: new residual dims are zero, norms rescaled, new heads / layers / MLPs write 0.
# ------------------------------------------------------------------------------------------
def grow(small, big_cfg, seed):
    s = small.c
    b = big_cfg
    assert s.head_dim == b.head_dim and s.num_attention_heads == s.num_key_value_heads
    d, D, hd = s.hidden_size, b.hidden_size, s.head_dim
    big = init_model(b, seed)
    rep = b.num_attention_heads // b.num_key_value_heads
    scale = math.sqrt(D / d)  # RMS over D dims with D-d zeros = RMS over d dims / scale
    with torch.no_grad():
        E = big.model.embed_tokens.weight
        E.zero_()
        E[:, :d] = small.model.embed_tokens.weight
        # new embedding dims get a small random part so the tied unembedding can grow (breaks symmetry)
        for i in range(b.num_hidden_layers):
            bl = big.model.layers[i]
            if i < s.num_hidden_layers:
                sl = small.model.layers[i]
                bl.input_layernorm.weight.fill_(1.0 / scale)
                bl.input_layernorm.weight[:d] = sl.input_layernorm.weight / scale
                # heads: small head h -> big q head h*rep (kv head h); other q heads new
                for h in range(s.num_attention_heads):
                    bq = h * rep
                    bl.self_attn.q_proj.weight[bq * hd:(bq + 1) * hd, :d] = sl.self_attn.q_proj.weight[h * hd:(h + 1) * hd]
                    bl.self_attn.q_proj.weight[bq * hd:(bq + 1) * hd, d:] = 0
                    for nm in ("k_proj", "v_proj"):
                        W = getattr(bl.self_attn, nm).weight
                        W[h * hd:(h + 1) * hd, :d] = getattr(sl.self_attn, nm).weight[h * hd:(h + 1) * hd]
                        W[h * hd:(h + 1) * hd, d:] = 0
                bl.self_attn.o_proj.weight.zero_()
                for h in range(s.num_attention_heads):
                    bq = h * rep
                    bl.self_attn.o_proj.weight[:d, bq * hd:(bq + 1) * hd] = sl.self_attn.o_proj.weight[:, h * hd:(h + 1) * hd]
            else:
                bl.self_attn.o_proj.weight.zero_()
            if bl.mlp is not None:
                bl.mlp.down_proj.weight.zero_()
        big.model.norm.weight.fill_(1.0 / scale)
        big.model.norm.weight[:d] = small.model.norm.weight / scale
    return big


def deepen(model, extra, seed):
    """Function-preserving: the same model with `extra` new layers on top whose attention and MLP outputs start
    at zero (their inputs are random), so training can grow a further sequential step (e.g. copy suppression
    after retrieval) without first un-learning anything."""
    c = Cfg(**{**model.c.to_dict(), "num_hidden_layers": model.c.num_hidden_layers + extra})
    big = init_model(c, seed)
    state = {k: v for k, v in model.state_dict().items()}
    missing = big.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    with torch.no_grad():
        for i in range(model.c.num_hidden_layers, c.num_hidden_layers):
            big.model.layers[i].self_attn.o_proj.weight.zero_()
            if big.model.layers[i].mlp is not None:
                big.model.layers[i].mlp.down_proj.weight.zero_()
    return big


# ------------------------------------------------------------------------------------------
# Greedy generation (torch, KV cache through the same forward as the export) and scoring.
# ------------------------------------------------------------------------------------------
@torch.no_grad()
def greedy(model, prompts, max_new):
    """prompts: list of equal-length id lists. Returns list of generated id lists (stopped at EOS, EOS excluded)."""
    b = len(prompts)
    dev = model.model.embed_tokens.weight.device
    ids = torch.tensor(prompts, dtype=torch.int64, device=dev)
    n = ids.shape[1]
    pos = torch.arange(n, device=dev).unsqueeze(0).expand(b, n)
    out = model(ids, torch.ones(b, n, dtype=torch.int64, device=dev), pos, *model.empty_past(b))
    past = list(out[1:])
    nxt = out[0][:, -1].argmax(-1)
    gen = [[] for _ in range(b)]
    done = [False] * b
    for t in range(max_new):
        for i in range(b):
            if not done[i]:
                if int(nxt[i]) == EOS:
                    done[i] = True
                else:
                    gen[i].append(int(nxt[i]))
        if all(done) or t == max_new - 1:
            break
        p = n + t
        out = model(nxt.unsqueeze(1), torch.ones(b, p + 1, dtype=torch.int64, device=dev),
                    torch.full((b, 1), p, dtype=torch.int64, device=dev), *past)
        past = list(out[1:])
        nxt = out[0][:, -1].argmax(-1)
    return gen


# Tasks whose answer is a set (RULER scores them with string_match_all, which ignores order): any order is exact.
UNORDERED = {"niah_multivalue"}


def answer_sets(task, ans, rng):
    """Teacher-forced answer and, per answer position, the set of correct next tokens. For an unordered task the
    values are fed in a random order and every not-yet-given value is correct (the loss is the log of their
    summed probability), so the model learns 'any remaining value', not an order it cannot see."""
    if task not in UNORDERED:
        return ans, [[a] for a in ans]
    vals = [a for a in ans if a != EOS]
    rng.shuffle(vals)
    return vals + [EOS], [vals[j:] for j in range(len(vals))] + [[EOS]]


def score(gen, ans, task=None):
    ref = [a for a in ans if a != EOS]
    exact = float(sorted(gen) == sorted(ref)) if task in UNORDERED else float(gen == ref)
    gtxt = " " + decode(gen) + " "
    part = sum(1 for r in ref if (" " + TOKENS[r] + " ") in gtxt) / len(ref)  # string_match_all
    return exact, part


def evaluate(model, lengths, n=50, seed=12345, tasks=TASKS, bs=25):
    model.eval()
    res = {}
    for L in lengths:
        for task in tasks:
            rng = random.Random(zlib.crc32(("%d/%s/%d" % (seed, task, L)).encode()))
            samples = [gen_task(rng, task, L) for _ in range(n)]
            ex = part = 0.0
            for i in range(0, n, bs):
                chunk = samples[i:i + bs]
                gens = greedy(model, [s[0] for s in chunk], 8)
                for g, (_, a) in zip(gens, chunk):
                    e, p = score(g, a, task)
                    ex += e
                    part += p
            res[(task, L)] = (ex / n, part / n)
    return res
