/**
 * External data (`TensorProto.data_location = EXTERNAL`): the graph names a file next to it and a byte range
 * per tensor. The runtime never reads these weights into JS memory; ORT reads them from the files (see
 * worker.ts). Here we only check every reference before the session is created, and read the few small
 * tensors the runtime itself needs (RoPE tables) by their byte range.
 */
import { closeSync, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { ModelLayoutError } from '@draft/core';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** Where one tensor's bytes live. */
export interface ExternalRef {
  /** Absolute path of the data file. */
  path: string;
  offset: number;
  /** Byte count; NaN when the graph gives none (the rest of the file). */
  length: number;
}

/** The external reference of `tensor` resolved against `baseDir`, or undefined for inline tensors. */
export function externalRef(tensor: TensorProto, baseDir: string, modelPath: string): ExternalRef | undefined {
  if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return undefined;
  const entries = new Map((tensor.externalData ?? []).map((e) => [e.key as string, e.value as string]));
  const location = entries.get('location') ?? '';
  // ORT rejects locations outside the model's folder; say so before it does, naming the tensor.
  if (location === '' || isAbsolute(location) || normalize(location).startsWith('..')) {
    throw new ModelLayoutError(`${modelPath}: tensor '${tensor.name}' has external data location ${JSON.stringify(location)}; expected a file next to the model.`, {
      path: modelPath,
      details: { tensor: tensor.name, location },
    });
  }
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : Number.NaN;
  return { path: join(baseDir, location), offset, length };
}

/**
 * Checks every external tensor of `tensors`: its file exists and `offset + length` fits in it. Returns the
 * data files referenced. Throws ModelLayoutError naming the file (missing or truncated) and the tensor.
 */
export function checkExternalData(tensors: readonly TensorProto[], baseDir: string, modelPath: string): string[] {
  const sizes = new Map<string, number>();
  for (const tensor of tensors) {
    const ref = externalRef(tensor, baseDir, modelPath);
    if (!ref) continue;
    let size = sizes.get(ref.path);
    if (size === undefined) {
      if (!existsSync(ref.path)) {
        throw new ModelLayoutError(`Missing external data file ${ref.path} (referenced by tensor '${tensor.name}' of ${modelPath}).`, {
          path: ref.path,
          details: { tensor: tensor.name, model: modelPath },
        });
      }
      size = statSync(ref.path).size;
      sizes.set(ref.path, size);
    }
    const length = Number.isNaN(ref.length) ? size - ref.offset : ref.length;
    if (!Number.isInteger(ref.offset) || ref.offset < 0 || !(length >= 0) || ref.offset + length > size) {
      throw new ModelLayoutError(
        `External data file ${ref.path} is truncated or the graph is corrupt: tensor '${tensor.name}' needs bytes [${ref.offset}, ${ref.offset + length}) but the file has ${size} bytes.`,
        { path: ref.path, details: { tensor: tensor.name, offset: ref.offset, length, size, model: modelPath } },
      );
    }
  }
  return [...sizes.keys()];
}

/** Reads just the byte range of one (checked) external tensor; without a length, up to the end of the file. */
export function readExternalBytes(ref: ExternalRef): Uint8Array {
  const out = new Uint8Array(Number.isNaN(ref.length) ? statSync(ref.path).size - ref.offset : ref.length);
  const fd = openSync(ref.path, 'r');
  try {
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, ref.offset + done);
      if (n === 0) throw new ModelLayoutError(`Unexpected end of ${ref.path} at byte ${ref.offset + done}.`, { path: ref.path });
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Points every external tensor at the real file behind its location and returns the folder ORT must resolve
 * them against. Why: ORT 1.30 resolves symlinks and refuses a data file outside the model's folder ("External
 * data path escapes model directory"), and the Hugging Face hub cache stores `snapshots/<rev>/onnx/model.onnx_data`
 * as a symlink into `blobs/`. The folder is the deepest common directory of the real files; locations become
 * relative to it. Without symlinks nothing changes but the folder's own canonical form.
 */
export function resolveExternalLocations(tensors: readonly TensorProto[], baseDir: string, modelPath: string): string {
  const real = new Map<TensorProto, string>();
  for (const tensor of tensors) {
    const ref = externalRef(tensor, baseDir, modelPath);
    if (ref) real.set(tensor, realpathSync(ref.path));
  }
  const dirs = [...new Set([...real.values()].map((p) => dirname(p)))];
  let folder = dirs[0] ?? realpathSync(baseDir);
  for (const dir of dirs) while (dir !== folder && !dir.startsWith(folder + sep)) folder = dirname(folder);
  for (const [tensor, path] of real) {
    const location = tensor.externalData?.find((e) => e.key === 'location');
    if (location) location.value = relative(folder, path);
  }
  return folder;
}

/** Inline initializers at least this large are handed to ORT by reference into the model file. */
const EXTERNALIZE_MIN_BYTES = 4096;

/**
 * Turns the large inline initializers of a model decoded from `fileBytes` (the whole .onnx file) into external
 * data pointing at their own byte ranges inside that file, and returns the folder ORT resolves them against
 * (the real folder of the model file) and the bytes so moved. Why: the worker instruments the graph and hands
 * ORT serialized bytes; with the weights inline, JS held the file and the re-encoded model (two copies of the
 * weights) while ORT built a third. By reference, ORT reads the weights from the file and JS re-encodes only the
 * graph. Tensors decoded from `fileBytes` are views into it (protobufjs), so their offsets are known exactly.
 */
export function externalizeInlineWeights(tensors: readonly TensorProto[], fileBytes: Uint8Array, modelPath: string): { folder: string; bytes: number } {
  const realModel = realpathSync(modelPath);
  const location = basename(realModel);
  let moved = 0;
  for (const tensor of tensors) {
    const raw = tensor.rawData;
    if (!raw || raw.byteLength < EXTERNALIZE_MIN_BYTES || raw.buffer !== fileBytes.buffer) continue;
    const offset = raw.byteOffset - fileBytes.byteOffset;
    if (offset < 0 || offset + raw.byteLength > fileBytes.byteLength) continue;
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    tensor.rawData = null;
    moved += raw.byteLength;
  }
  return { folder: dirname(realModel), bytes: moved };
}