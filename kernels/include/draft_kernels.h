/*
 * draft_kernels.h: the C ABI of @draft's native kernels (CPU always, CUDA when built with a toolkit).
 *
 * Conventions
 *  - Every function returns a draft_status; kernels never exit/abort and never print.
 *  - Names: draft_<backend>_<action>_<noun>; backend is `cpu` or `cuda`.
 *  - Tensors are dense, row-major, batch 1; shapes are documented per argument as (dim0, dim1, ...).
 *  - CUDA entry points take HOST pointers: they copy inputs to the device, run, and copy results back.
 *    Without a CUDA build they return DRAFT_ERR_NOT_BUILT; without a device, DRAFT_ERR_NO_DEVICE.
 *  - Scores: higher = keep. Results reproduce the TypeScript references in @draft/core
 *    (packages/core/src/primitives) up to float rounding.
 *  - num_threads <= 0 means "one per hardware thread".
 */
#ifndef DRAFT_KERNELS_H
#define DRAFT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DRAFT_KERNELS_VERSION_MAJOR 0
#define DRAFT_KERNELS_VERSION_MINOR 4

typedef enum draft_status {
  DRAFT_OK = 0,
  DRAFT_ERR_INVALID_ARGUMENT = 1, /* bad shape, null pointer, out-of-range index, unknown enum value */
  DRAFT_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
  DRAFT_ERR_CUDA = 3,             /* a CUDA runtime call or kernel launch failed */
  DRAFT_ERR_NO_DEVICE = 4,        /* CUDA built but no usable device */
  DRAFT_ERR_NOT_BUILT = 5,        /* this backend was not compiled into the library */
  DRAFT_ERR_UNSUPPORTED = 6,      /* valid request this backend does not implement (e.g. CUDA top-k score order) */
  DRAFT_ERR_INTERNAL = 7          /* unexpected C++ exception or thread failure */
} draft_status;

typedef enum draft_dtype { DRAFT_DTYPE_F32 = 0, DRAFT_DTYPE_F16 = 1 } draft_dtype;
typedef enum draft_reduce_op { DRAFT_REDUCE_MAX = 0, DRAFT_REDUCE_MEAN = 1, DRAFT_REDUCE_SUM = 2 } draft_reduce_op;
typedef enum draft_pool_type { DRAFT_POOL_MAX = 0, DRAFT_POOL_AVG = 1 } draft_pool_type;
typedef enum draft_pool_padding {
  DRAFT_PAD_SAME = 0,        /* k//2 each side (odd k). max: -inf; avg: zeros, always divides by k */
  DRAFT_PAD_CENTRED_ZERO = 1 /* zeros, left (k-1)//2, right k-1-(k-1)//2 (SpecPC; any k) */
} draft_pool_padding;
typedef enum draft_topk_order { DRAFT_TOPK_POSITION = 0, DRAFT_TOPK_SCORE = 1 } draft_topk_order;

/** Human-readable name of a status (static storage). */
const char* draft_status_string(draft_status status);
/** 1 when the CUDA sources were compiled into this library, else 0. */
int draft_cuda_built(void);
/** Number of usable CUDA devices (0 when not built or none). Returns DRAFT_OK with *count = 0 when not built. */
draft_status draft_cuda_device_count(int32_t* count);

/* ---------------------------------------------------------------------------------------------------------
 * Fused window scoring (ALGORITHMS.md primitives 1+2):
 *   logits = Q·Kᵀ·scale, causal tail (query i sees tail keys <= i), fp32 softmax over ALL keys,
 *   p *= query_weights[i] (optional), reduce over the G = num_heads/num_kv_heads group heads and the
 *   query_count queries with max | mean (÷ G·w) | sum  ->  out (num_kv_heads, key_count).
 * Keys are streamed in chunks (pass 1: online max/denominator, pass 2: normalise + reduce), so working memory
 * is O(G·w × chunk) per thread, never the (w, N) score matrix.
 * ------------------------------------------------------------------------------------------------------- */
typedef struct draft_window_scores_args {
  const float* queries;        /* (num_heads, query_count, head_dim), post-RoPE */
  const void* keys;            /* (num_kv_heads, key_count, head_dim), post-RoPE, key_dtype */
  draft_dtype key_dtype;       /* F32 or F16 (IEEE half, converted on load) */
  int32_t num_heads;           /* Hq, a multiple of num_kv_heads */
  int32_t num_kv_heads;        /* Hkv */
  int32_t head_dim;            /* d */
  int32_t query_count;         /* w <= key_count: the window queries are the last w key positions */
  int32_t key_count;           /* N */
  int32_t causal_tail;         /* nonzero: query i sees keys j < N - w + i + 1 */
  float scale;                 /* logit scale; 0 means 1/sqrt(head_dim) */
  draft_reduce_op op;
  const float* query_weights;  /* NULL or (query_count): weight of each query row before reducing */
  int32_t chunk_size;          /* keys per work unit (<= 0: 1024) */
  int32_t num_threads;
  float* out;                  /* (num_kv_heads, key_count) */
} draft_window_scores_args;

draft_status draft_cpu_window_scores(const draft_window_scores_args* args);
draft_status draft_cuda_window_scores(const draft_window_scores_args* args);

/* Stride-1 1-D pooling keeping the length, per row. scores/out: (rows, length); out may not alias scores. */
draft_status draft_cpu_pool1d(const float* scores, int32_t rows, int32_t length, int32_t kernel,
                              draft_pool_type type, draft_pool_padding padding, float* out);
draft_status draft_cuda_pool1d(const float* scores, int32_t rows, int32_t length, int32_t kernel,
                               draft_pool_type type, draft_pool_padding padding, float* out);

/*
 * Stable top-k per row: the min(k, length) highest of scores[r*row_stride + 0 .. length), ties -> lower
 * position, NaN ranks below -inf (NaNs among themselves by position). out: (rows, min(k, length)) int32
 * positions relative to the row start, ascending (DRAFT_TOPK_POSITION) or by descending score
 * (DRAFT_TOPK_SCORE, ties lower position first).
 */
draft_status draft_cpu_topk(const float* scores, int32_t rows, int64_t row_stride, int32_t length, int32_t k,
                            draft_topk_order order, int32_t num_threads, int32_t* out);
draft_status draft_cuda_topk(const float* scores, int32_t rows, int64_t row_stride, int32_t length, int32_t k,
                             draft_topk_order order, int32_t* out);

/*
 * KV gather / compaction for one layer: tensor (num_kv_heads, length, row_dim) of elements of `dtype`;
 * head h keeps counts[h] rows listed at indices[offset_h .. offset_h + counts[h]) with offset_h = sum of
 * earlier counts (ragged); pass counts = NULL and uniform_count = k for the uniform case (indices (Hkv, k)).
 * out: the kept rows head after head, (sum(counts), row_dim). Any index outside [0, length) ->
 * DRAFT_ERR_INVALID_ARGUMENT (nothing guaranteed written).
 */
draft_status draft_cpu_gather_rows(const void* tensor, draft_dtype dtype, int32_t num_kv_heads, int32_t length,
                                   int32_t row_dim, const int32_t* indices, const int32_t* counts,
                                   int32_t uniform_count, int32_t num_threads, void* out);
draft_status draft_cuda_gather_rows(const void* tensor, draft_dtype dtype, int32_t num_kv_heads, int32_t length,
                                    int32_t row_dim, const int32_t* indices, const int32_t* counts,
                                    int32_t uniform_count, void* out);

/*
 * SpecPC per-token aggregation (ALGORITHMS.md SpecPC step 3): out[j] = max over layers l and rows r of
 * scores[(l*rows_per_layer + r)*key_count + j] for j < out_length <= key_count (truncation to the prompt).
 * scores: (num_layers, rows_per_layer, key_count). With accumulate != 0 the current out[j] joins the max, so
 * layers can be streamed one at a time (peak memory: one layer). NaN never wins.
 */
draft_status draft_cpu_specpc_aggregate(const float* scores, int32_t num_layers, int32_t rows_per_layer,
                                        int32_t key_count, int32_t out_length, int32_t accumulate, float* out);
draft_status draft_cuda_specpc_aggregate(const float* scores, int32_t num_layers, int32_t rows_per_layer,
                                         int32_t key_count, int32_t out_length, int32_t accumulate, float* out);

/* ---------------------------------------------------------------------------------------------------------
 * Attention over RAGGED per-KV-head caches (one layer): each KV head h holds exactly its kept entries, rows
 * offsets[h] .. offsets[h] + lengths[h] of the packed keys / values buffers (kv_rows × head_dim each; gaps
 * between blocks are spare capacity and never read). Query head q uses KV head q / (num_heads/num_kv_heads).
 *   out[q, i] = Σ_j softmax_j(scale · Q[q, i]·K[h, j]) · V[h, j]
 * with causal != 0: the query_count queries are the last query_count entries of each head, so query i sees
 * entries j < lengths[h] − query_count + i + 1. A query that sees no entry (empty head, or a head shorter
 * than the causal tail) gets a zero output row. Work unit = (KV head, entry chunk): the G·query_count rows of
 * a KV head share each chunk (K/V read once), online softmax (running max + rescaled accumulators), chunk
 * partials merged with log-sum-exp ("flash decoding"). Never materialises a score matrix.
 * ------------------------------------------------------------------------------------------------------- */
typedef struct draft_ragged_attention_args {
  const float* queries;   /* (num_heads, query_count, head_dim), post-RoPE */
  const void* keys;       /* (kv_rows, head_dim) of kv_dtype, post-RoPE; may be NULL when kv_rows == 0 */
  const void* values;     /* (kv_rows, head_dim) of kv_dtype, same row layout as keys */
  draft_dtype kv_dtype;   /* F32 or F16 (IEEE half, converted on load); accumulation is always fp32 */
  int64_t kv_rows;        /* rows of keys and values: every block must lie inside [0, kv_rows) */
  const int32_t* offsets; /* (num_kv_heads): first row of head h */
  const int32_t* lengths; /* (num_kv_heads): entries held by head h (0 allowed) */
  int32_t num_heads;      /* Hq, a multiple of num_kv_heads */
  int32_t num_kv_heads;   /* Hkv */
  int32_t head_dim;       /* d */
  int32_t query_count;    /* queries per head: 1 for decode, a few for a chunk */
  int32_t causal;         /* nonzero: the queries are each head's last query_count entries (see above) */
  float scale;            /* logit scale; 0 means 1/sqrt(head_dim) */
  int32_t chunk_size;     /* entries per work unit (<= 0: chosen from the total and the thread count) */
  int32_t num_threads;
  float* out;             /* (num_heads, query_count, head_dim) */
} draft_ragged_attention_args;

draft_status draft_cpu_ragged_attention(const draft_ragged_attention_args* args);
/* CUDA: head_dim <= 256 (else DRAFT_ERR_UNSUPPORTED); host pointers, the whole kv_rows buffers are copied. */
draft_status draft_cuda_ragged_attention(const draft_ragged_attention_args* args);

/* ---------------------------------------------------------------------------------------------------------
 * Native decoder (Llama family: RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU MLP): one decode
 * step for one or more sequences, weights read once per step for all of them. The weights are the caller's
 * (row-major (out, in), as torch's nn.Linear stores them) and must outlive the decoder; nothing is copied.
 * Caches are the caller's too: per sequence and layer (num_kv_heads, capacity, head_dim) f32 (or f16, kv_dtype), the step writes
 * the token's K/V (after RoPE) at column `used` and attends over the columns below it that `mask` marks
 * (NULL: all of them) plus the new one. The decoder owns a persistent pool of num_threads - 1 threads that
 * sleep between steps; one step may run at a time per decoder.
 * ------------------------------------------------------------------------------------------------------- */
typedef struct draft_decoder draft_decoder;

typedef struct draft_decoder_config {
  int32_t hidden_size, num_layers, num_heads, num_kv_heads, head_dim, intermediate_size, vocab_size;
  float rms_norm_eps;
  int32_t num_threads;  /* <= 0: one per hardware thread */
  /* Element type of every cache this decoder reads and writes (rows, layer calls): F32 (the zero default), or F16
   * (IEEE half bits: half the bytes per entry; new K/V are rounded to nearest even when written and every read,
   * the prefill's own attention included, sees the stored values). Accumulation is always fp32. */
  draft_dtype kv_dtype;
  /* Element type of the embedding, the projection matrices and the LM head (the pointers marked "of
   * weight_dtype" below): F32 (the zero default) or F16 (IEEE half bits, widened exactly on load; activations and
   * accumulation stay fp32, so a step reads half the weight bytes). Norms and biases are always fp32. */
  draft_dtype weight_dtype;
} draft_decoder_config;

typedef struct draft_decoder_layer {
  const float *input_norm, *post_norm;        /* (hidden) */
  const void *q, *k, *v, *o;                  /* of weight_dtype: (H·d, hidden), (Hkv·d, hidden) ×2, (hidden, H·d) */
  const float *q_bias, *k_bias, *v_bias;      /* optional (NULL): Qwen2-style projection biases */
  const void *gate, *up, *down;               /* of weight_dtype: (inter, hidden) ×2, (hidden, inter) */
} draft_decoder_layer;

typedef struct draft_decoder_weights {
  const void* embed;                 /* of weight_dtype: (vocab, hidden) */
  const draft_decoder_layer* layers; /* num_layers entries (copied at create) */
  const float* final_norm;           /* (hidden) */
  const void* lm_head;               /* of weight_dtype: (vocab, hidden) */
} draft_decoder_weights;

typedef struct draft_decoder_row {
  int32_t token;
  const float *cos, *sin;     /* (head_dim): this position's rotation, rotate-half layout (halves repeated) */
  void* const* keys;          /* num_layers pointers to (num_kv_heads, capacity, head_dim) of config.kv_dtype */
  void* const* values;
  int32_t capacity, used;     /* used < capacity */
  const uint8_t* mask;        /* (used) or NULL */
  /* Optional per-layer masks (num_kv_heads, capacity): 1 = KV head g attends to column j (ragged caches padded
   * per head). Columns below `used` are read; they apply on top of `mask`. NULL: none. */
  const uint8_t* const* head_masks;
  float* logits;              /* (vocab) out */
  /* Optional packed heads (caches that hold exactly what each KV head keeps): per layer, KV head g holds
   * head_used[l][g] entries at rows head_offsets[l][g] … of keys[l] / values[l] (rows of head_dim); the step writes
   * the token's K/V at row head_offsets[l][g] + head_used[l][g] and attends over those rows plus it; mask and
   * head_masks do not apply (capacity and used must still satisfy 0 <= used < capacity). NULL: the
   * (num_kv_heads, capacity) layout above. */
  const int32_t* const* head_offsets;
  const int32_t* const* head_used;
} draft_decoder_row;

draft_status draft_cpu_decoder_create(const draft_decoder_config* config, const draft_decoder_weights* weights, draft_decoder** out);
draft_status draft_cpu_decoder_step(draft_decoder* decoder, const draft_decoder_row* rows, int32_t count);
void draft_cpu_decoder_destroy(draft_decoder* decoder);

/* ---------------------------------------------------------------------------------------------------------
 * Native prefill with the same decoder, one layer at a time, so a caller can select each layer's entries right
 * after its attention (only one layer's full KV need exist). Hidden states are the caller's (count, hidden_size)
 * rows, updated in place by each layer:
 *   draft_cpu_decoder_embed   hidden[t] = embed[tokens[t]]
 *   draft_cpu_decoder_layer   one layer over `count` tokens whose K/V (after RoPE) go to cache columns
 *                             [used, used + count); token t attends causally to columns [0, used + t] (those
 *                             below `used` as head_mask marks, when given). Optionally the post-RoPE queries of
 *                             the last query_rows tokens, (num_heads, query_rows, head_dim), unscaled.
 *   draft_cpu_decoder_head    final norm and LM head: logits (count, vocab) of the rows given.
 * Attention is blocked (flash style: running max and sum per query row), so no score matrix is materialised;
 * scratch is O(one layer's keys + a token block's activations). One call at a time per decoder.
 * ------------------------------------------------------------------------------------------------------- */
typedef struct draft_decoder_layer_call {
  int32_t layer;
  float* hidden;            /* (count, hidden_size) in/out */
  int32_t count;
  const float *cos, *sin;   /* (count, head_dim): each token's rotation, rotate-half layout */
  void *keys, *values;      /* this layer's (num_kv_heads, capacity, head_dim) of config.kv_dtype */
  int32_t capacity, used;   /* used + count <= capacity */
  const uint8_t* head_mask; /* (num_kv_heads, capacity) 1 = attend, read below `used`; NULL = all */
  float* queries;           /* optional (num_heads, query_rows, head_dim) out */
  int32_t query_rows;       /* 0..count */
} draft_decoder_layer_call;

draft_status draft_cpu_decoder_embed(draft_decoder* decoder, const int32_t* tokens, int32_t count, float* hidden);
draft_status draft_cpu_decoder_layer(draft_decoder* decoder, const draft_decoder_layer_call* call);
draft_status draft_cpu_decoder_head(draft_decoder* decoder, const float* hidden, int32_t count, float* logits);

#ifdef __cplusplus
}
#endif

#endif /* DRAFT_KERNELS_H */
