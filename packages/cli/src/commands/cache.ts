import { InvalidArgumentError } from '@draft/core';
import { buildDocumentCache, type DocumentCacheHeader, loadModel, type OrtCausalLM, openCacheContainer } from '@draft/runtime';
import { resolveModelDir } from '../model-dirs.js';
import { dtypeOption, intOption } from '../options.js';
import { readPrompt } from './generate.js';

export const CACHE_USAGE = `  draft cache build [--target DIR] [--draft DIR | --no-draft] [--dtype D] [--draft-dtype D]
                    (--prompt-file DOC | --prompt TEXT) --out FILE [--store-queries N|all] [--json]
  draft cache info FILE [--json]`;

export interface CacheBuildFlags {
  target?: string;
  draft?: string;
  'no-draft'?: boolean;
  dtype?: string;
  'draft-dtype'?: string;
  prompt?: string;
  'prompt-file'?: string;
  out?: string;
  'store-queries'?: string;
  json?: boolean;
}

/** What `draft cache build` and `draft cache info` report (`--json`: exactly this object). */
export interface CacheSummary {
  path: string;
  fileBytes: number;
  formatVersion: number;
  documentTokens: number;
  target: { dtype: string; kvType: string; onnx: string; queryCount: number };
  draft: { dtype: string; kvType: string; onnx: string; tokens: number } | null;
  /** Document prefill milliseconds (build only). */
  prefillMs?: { target: number; draft?: number };
}

function summary(path: string, fileBytes: number, header: DocumentCacheHeader): CacheSummary {
  const t = header.target;
  const d = header.draft;
  return {
    path,
    fileBytes,
    formatVersion: header.formatVersion,
    documentTokens: t.tokenCount,
    target: { dtype: t.fingerprint.dtype, kvType: t.fingerprint.kvType, onnx: t.fingerprint.onnx.file, queryCount: t.queryCount },
    draft: d ? { dtype: d.fingerprint.dtype, kvType: d.fingerprint.kvType, onnx: d.fingerprint.onnx.file, tokens: d.tokenCount } : null,
  };
}

/**
 * `draft cache build`: prefills the document on the target (and, unless --no-draft, the draft: SpecKV's
 * lookahead then prefills only the question on the draft too) and writes the cache file.
 */
export async function runCacheBuild(flags: CacheBuildFlags, signal?: AbortSignal): Promise<CacheSummary> {
  if (!flags.out) throw new InvalidArgumentError({ argument: '--out', value: flags.out, expected: 'the cache file to write (--out FILE)' });
  if (flags['no-draft'] && flags.draft) throw new InvalidArgumentError({ argument: '--no-draft', value: '--draft and --no-draft', expected: 'at most one of them' });
  const dtype = dtypeOption('dtype', flags.dtype);
  const draftDtype = dtypeOption('draft-dtype', flags['draft-dtype']);
  const storeQueries = flags['store-queries'] === 'all' ? 'all' : intOption('store-queries', flags['store-queries'], 0);
  const document = await readPrompt(flags);
  const models: OrtCausalLM[] = [];
  try {
    const target = await loadModel(resolveModelDir('target', flags.target), { dtype });
    models.push(target);
    const draft = flags['no-draft'] ? undefined : await loadModel(resolveModelDir('draft', flags.draft), { dtype: draftDtype });
    if (draft) models.push(draft);
    const built = await buildDocumentCache({ target, draft, document, path: flags.out, storeQueries, signal });
    return { ...summary(built.path, built.fileBytes, built.header), prefillMs: built.prefillMs };
  } finally {
    await Promise.all(models.map((m) => m.dispose()));
  }
}

/** `draft cache info FILE`: verifies the file (magic, version, size, checksum) and describes it; loads no model. */
export function runCacheInfo(path: string | undefined): CacheSummary {
  if (!path) throw new InvalidArgumentError({ argument: 'FILE', value: path, expected: 'a cache file: draft cache info FILE' });
  const container = openCacheContainer(path);
  try {
    return summary(container.path, container.fileBytes, container.header as unknown as DocumentCacheHeader);
  } finally {
    container.close();
  }
}

export function formatCacheSummary(s: CacheSummary): string {
  const mb = (s.fileBytes / (1024 * 1024)).toFixed(2);
  const lines = [
    `${s.path}: document cache v${s.formatVersion}, ${s.documentTokens} tokens, ${mb} MiB`,
    `  target: ${s.target.onnx} (${s.target.dtype}, KV ${s.target.kvType}), queries of the last ${s.target.queryCount} positions`,
    `  draft: ${s.draft ? `${s.draft.onnx} (${s.draft.dtype}, KV ${s.draft.kvType}), ${s.draft.tokens} tokens` : 'not stored (lookaheads prefill the draft in full)'}`,
  ];
  if (s.prefillMs) lines.push(`  document prefill: target ${s.prefillMs.target.toFixed(0)} ms${s.prefillMs.draft === undefined ? '' : `, draft ${s.prefillMs.draft.toFixed(0)} ms`}`);
  return `${lines.join('\n')}\n`;
}
