/**
 * A decoder run as one ORT session per layer segment (see graph/split-layers.ts). `run` behaves like the
 * whole graph's `session.run(feeds, fetches)` (every existing call path works unchanged); `runSegment` lets
 * the layer-wise prefill run one layer over every chunk before the next.
 */
import type { LayerSegment } from './graph/split-layers.js';

type Ort = typeof import('onnxruntime-node');
type Tensor = InstanceType<Ort['Tensor']>;
type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>;
export type Feeds = Record<string, Tensor>;
export type Fetches = Record<string, Tensor | null>;

/** What the worker needs of a session: the whole graph's names and `run`. */
export interface GraphRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Feeds, fetches: Fetches): Promise<Record<string, Tensor>>;
}

export interface SegmentSession extends LayerSegment {
  session: Session;
}

export class LayeredSession implements GraphRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Prelude first, then layers 0 … L − 1. */
  readonly segments: readonly SegmentSession[];
  /** Tensors a segment produces that a later one reads. */
  private readonly crossing: ReadonlySet<string>;

  private constructor(segments: SegmentSession[], inputNames: readonly string[], outputNames: readonly string[]) {
    this.segments = segments;
    this.inputNames = inputNames;
    this.outputNames = outputNames;
    const produced = new Set(segments.flatMap((s) => s.outputs));
    this.crossing = new Set(segments.flatMap((s) => s.inputs).filter((name) => produced.has(name)));
  }

  static async create(ort: Ort, segments: readonly LayerSegment[], options: Record<string, unknown>, graphNames: { inputs: readonly string[]; outputs: readonly string[] }): Promise<LayeredSession> {
    const sessions: SegmentSession[] = [];
    try {
      // One thread pool and arena per segment: pools that spin after each run starve the next segment's
      // (decode ran 5× slower), and per-session arenas each keep their own activation peak (RSS grew by
      // the number of layers), so segments sleep between runs and allocate from the process heap.
      const extra = (options.extra ?? {}) as { session?: Record<string, string> };
      const segmentOptions = { ...options, enableCpuMemArena: false, extra: { ...extra, session: { ...extra.session, 'intra_op.allow_spinning': '0' } } };
      for (const segment of segments) sessions.push({ ...segment, session: await ort.InferenceSession.create(segment.bytes, segmentOptions) });
    } catch (error) {
      await Promise.all(sessions.map((s) => s.session.release()));
      throw error;
    }
    // The bytes were only needed to create the sessions.
    for (const s of sessions) s.bytes = new Uint8Array(0);
    return new LayeredSession(sessions, graphNames.inputs, graphNames.outputs);
  }

  /** Whether `name` is produced by one segment and read by another. */
  isCrossing(name: string): boolean {
    return this.crossing.has(name);
  }

  /** Feeds of one segment from a pool of named tensors (shape-only pasts of other layers aliased to its own). */
  feedsFor(segment: SegmentSession, tensors: ReadonlyMap<string, Tensor> | Feeds): Feeds {
    const get = (name: string) => (tensors instanceof Map ? tensors.get(name) : (tensors as Feeds)[name]);
    const feeds: Feeds = {};
    for (const name of segment.inputs) {
      const t = get(segment.shapeOnlyPasts.get(name) ?? name) ?? get(name);
      if (!t) throw new Error(`layer segment ${segment.layer} needs '${name}', which nothing provided`);
      feeds[name] = t;
    }
    return feeds;
  }

  async run(feeds: Feeds, fetches: Fetches): Promise<Record<string, Tensor>> {
    const tensors = new Map<string, Tensor>(Object.entries(feeds));
    const result: Record<string, Tensor> = {};
    for (const segment of this.segments) {
      const segmentFetches: Fetches = {};
      let any = false;
      for (const name of segment.outputs) {
        if (name in fetches) segmentFetches[name] = fetches[name];
        else if (this.crossing.has(name)) segmentFetches[name] = null;
        else continue;
        any = true;
      }
      if (!any) continue;
      const out = await segment.session.run(this.feedsFor(segment, tensors), segmentFetches);
      for (const [name, t] of Object.entries(out)) {
        tensors.set(name, t);
        if (name in fetches) result[name] = t;
      }
    }
    return result;
  }

  async release(): Promise<void> {
    await Promise.all(this.segments.map((s) => s.session.release()));
  }
}
