/**
 * The binary container of a document cache file (format version 1). Little-endian throughout.
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 8 | magic `DRAFTKV\n` (44 52 41 46 54 4B 56 0A) |
 * | 8 | 4 | format version, u32 (1) |
 * | 12 | 4 | header length H, u32: UTF-8 JSON |
 * | 16 | 8 | payload length P, u64 |
 * | 24 | 32 | SHA-256 of every byte after the prefix: header, its padding, payload |
 * | 56 | H | header JSON (`sections` names every tensor: offset into the payload, bytes, element type, shape) |
 * | 56 + H | pad | zeros up to a multiple of 64 |
 * | … | P | payload: sections, each at a multiple of 64 from the payload start |
 *
 * The file size must be exactly 56 + H + pad + P. Readers check, in order: magic, version, sizes, checksum,
 * then the header; only then is anything handed to a model.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { CacheFileError } from '@draft/core';

export const CACHE_FILE_MAGIC = Buffer.from('DRAFTKV\n', 'latin1');
export const CACHE_FILE_VERSION = 1;
const PREFIX_BYTES = 56;
const ALIGN = 64;
/** Headers beyond this are refused before parsing (a 1M-token document's ids are ~8 MB of JSON). */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;
const CHUNK = 4 * 1024 * 1024;

export type SectionElementType = 'float32' | 'float16' | 'int32';

/** One tensor of the payload. */
export interface SectionRef {
  name: string;
  elementType: SectionElementType;
  shape: number[];
  /** Bytes from the payload start (a multiple of 64). */
  offset: number;
  byteLength: number;
}

/** A tensor to write: float16 data are the raw bits. */
export interface SectionData {
  name: string;
  elementType: SectionElementType;
  shape: number[];
  data: Float32Array | Uint16Array | Int32Array;
}

const BYTES: Record<SectionElementType, number> = { float32: 4, float16: 2, int32: 4 };
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

function bytesOf(data: SectionData['data']): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Writes `header` (JSON; a `sections` field is added) and the sections. Written to a temporary file beside
 * `path`, then renamed over it, so a reader never sees half a file. Returns the file's size.
 */
export function writeCacheContainer(path: string, header: Record<string, unknown>, sections: readonly SectionData[]): number {
  let offset = 0;
  const refs: SectionRef[] = sections.map((s) => {
    const count = s.shape.reduce((a, b) => a * b, 1);
    if (count !== s.data.length) throw new Error(`section ${s.name}: shape [${s.shape}] does not match ${s.data.length} elements`);
    const ref = { name: s.name, elementType: s.elementType, shape: s.shape, offset, byteLength: s.data.length * BYTES[s.elementType] };
    offset = align(offset + ref.byteLength);
    return ref;
  });
  const payloadBytes = refs.length > 0 ? refs[refs.length - 1].offset + refs[refs.length - 1].byteLength : 0;
  const json = Buffer.from(JSON.stringify({ ...header, sections: refs }), 'utf8');
  const headerPad = align(PREFIX_BYTES + json.length) - (PREFIX_BYTES + json.length);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  CACHE_FILE_MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(CACHE_FILE_VERSION, 8);
  prefix.writeUInt32LE(json.length, 12);
  prefix.writeBigUInt64LE(BigInt(payloadBytes), 16);
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w');
  try {
    const hash = createHash('sha256');
    let at = 0;
    const put = (bytes: Buffer, hashed = true) => {
      if (hashed) hash.update(bytes);
      writeSync(fd, bytes, 0, bytes.length, at);
      at += bytes.length;
    };
    put(prefix, false);
    put(json);
    put(Buffer.alloc(headerPad));
    refs.forEach((ref, i) => {
      put(bytesOf(sections[i].data));
      const gap = i + 1 < refs.length ? refs[i + 1].offset - (ref.offset + ref.byteLength) : 0;
      if (gap > 0) put(Buffer.alloc(gap));
    });
    hash.digest().copy(prefix, 24);
    writeSync(fd, prefix, 24, 32, 24);
    closeSync(fd);
    renameSync(temp, path);
    return at;
  } catch (error) {
    try {
      closeSync(fd);
    } catch {}
    rmSync(temp, { force: true });
    throw error;
  }
}

/** An opened, verified container: its header and a reader of its sections. */
export interface CacheContainer {
  path: string;
  version: number;
  /** The parsed header JSON (its `sections` checked against the payload). */
  header: Record<string, unknown> & { sections: SectionRef[] };
  fileBytes: number;
  /** A copy of one section's elements (float16 as raw bits). */
  read(name: string): Float32Array | Uint16Array | Int32Array;
  close(): void;
}

function fail(path: string, reason: ConstructorParameters<typeof CacheFileError>[0]['reason'], message: string, details?: Record<string, unknown>, cause?: unknown): never {
  throw new CacheFileError({ path, reason, message, details, cause });
}

/**
 * Opens a container and verifies it: magic, version, sizes, SHA-256 over header and payload, header JSON and
 * section geometry. Throws `CacheFileError` (reason 'unreadable', 'not-a-cache-file', 'unsupported-version',
 * 'truncated', 'checksum' or 'malformed') naming the file. Reads the file twice (hash, then sections) and holds
 * at most one section in memory at a time.
 */
export function openCacheContainer(path: string): CacheContainer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    fail(path, 'unreadable', `cannot open the cache file (${(cause as Error).message}).`, {}, cause);
  }
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(PREFIX_BYTES);
    const got = readSync(fd, prefix, 0, PREFIX_BYTES, 0);
    if (got < CACHE_FILE_MAGIC.length || !prefix.subarray(0, CACHE_FILE_MAGIC.length).equals(CACHE_FILE_MAGIC)) {
      fail(path, 'not-a-cache-file', `not a draft cache file (its first bytes are not the magic ${JSON.stringify(CACHE_FILE_MAGIC.toString('latin1'))}).`);
    }
    if (got < PREFIX_BYTES) fail(path, 'truncated', `the file has ${size} bytes, fewer than the ${PREFIX_BYTES}-byte fixed header.`, { fileBytes: size });
    const version = prefix.readUInt32LE(8);
    if (version !== CACHE_FILE_VERSION) {
      fail(path, 'unsupported-version', `format version ${version}; this build reads version ${CACHE_FILE_VERSION} only (rebuild the cache with this version of draft).`, {
        version,
        supported: [CACHE_FILE_VERSION],
      });
    }
    const headerBytes = prefix.readUInt32LE(12);
    const payloadBytes = Number(prefix.readBigUInt64LE(16));
    const payloadStart = align(PREFIX_BYTES + headerBytes);
    const expected = payloadStart + payloadBytes;
    if (headerBytes > MAX_HEADER_BYTES || expected !== size) {
      fail(path, 'truncated', `the file has ${size} bytes but its header describes ${expected} (header ${headerBytes} + payload ${payloadBytes}).`, { fileBytes: size, expectedBytes: expected });
    }
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(Math.min(CHUNK, Math.max(1, size - PREFIX_BYTES)));
    for (let at = PREFIX_BYTES; at < size; ) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - at), at);
      if (n <= 0) fail(path, 'truncated', `the file ended at byte ${at} while reading ${size}.`);
      hash.update(buffer.subarray(0, n));
      at += n;
    }
    const digest = hash.digest();
    const stored = prefix.subarray(24, 56);
    if (!digest.equals(stored)) {
      fail(path, 'checksum', 'SHA-256 checksum mismatch: the file was changed or damaged after it was written.', { stored: stored.toString('hex'), computed: digest.toString('hex') });
    }
    const json = Buffer.alloc(headerBytes);
    readSync(fd, json, 0, headerBytes, PREFIX_BYTES);
    let header: CacheContainer['header'];
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch (cause) {
      fail(path, 'malformed', `the header is not valid JSON (${(cause as Error).message}).`, {}, cause);
    }
    const sections = (header as { sections?: unknown }).sections;
    if (typeof header !== 'object' || header === null || !Array.isArray(sections)) fail(path, 'malformed', 'the header has no sections list.');
    const byName = new Map<string, SectionRef>();
    for (const s of sections as SectionRef[]) {
      const count = Array.isArray(s?.shape) ? s.shape.reduce((a, b) => a * b, 1) : Number.NaN;
      const ok =
        typeof s?.name === 'string' &&
        Object.hasOwn(BYTES, s.elementType) &&
        Number.isSafeInteger(s.offset) &&
        s.offset >= 0 &&
        s.offset % ALIGN === 0 &&
        Number.isSafeInteger(count) &&
        s.byteLength === count * BYTES[s.elementType] &&
        s.offset + s.byteLength <= payloadBytes &&
        !byName.has(s.name);
      if (!ok) fail(path, 'malformed', `section ${JSON.stringify(s?.name)} lies outside the payload or has an inconsistent shape.`, { section: s });
      byName.set(s.name, s);
    }
    const opened = fd;
    let closed = false;
    return {
      path,
      version,
      header,
      fileBytes: size,
      read(name) {
        const s = byName.get(name);
        if (!s) fail(path, 'malformed', `the header lists no section '${name}'.`, { section: name });
        if (closed) throw new Error('cache container closed');
        const bytes = Buffer.alloc(s.byteLength);
        readSync(opened, bytes, 0, s.byteLength, payloadStart + s.offset);
        const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        return s.elementType === 'float16' ? new Uint16Array(ab) : s.elementType === 'int32' ? new Int32Array(ab) : new Float32Array(ab);
      },
      close() {
        if (closed) return;
        closed = true;
        closeSync(opened);
      },
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
