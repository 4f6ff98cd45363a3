import { NativeUnavailableError, InvalidArgumentError } from '../spec/errors.js';
import type { KernelBackendV1 } from './kernel-backend.js';
import { referenceKernelBackend } from './reference-backend.js';

/** Where notices go. Default: `console.warn`. */
export interface KernelLogger {
  warn(message: string): void;
}

export interface KernelBackendInfo {
  name: string;
  device: string;
  priority: number;
  /** Whether `getKernelBackend()` returns this backend now. */
  active: boolean;
}

interface Entry {
  backend: KernelBackendV1;
  priority: number;
  order: number;
}

/**
 * A set of kernel backends and a preference. The process-wide instance behind `getKernelBackend()` lives on
 * `globalThis` under `Symbol.for('@draft/core.kernelRegistry.v1')`, so duplicated copies of @draft/core
 * (two versions in one node_modules tree) still share one registry and the native addon registers once.
 *
 * Selection: the preferred backend (`use(name)`) when registered; otherwise the registered backend with the
 * highest priority (ties: the later registration). The reference backend is always there, at priority 0.
 */
export class KernelRegistry {
  private readonly entries = new Map<string, Entry>();
  private preferred: string | undefined;
  private logger: KernelLogger = { warn: (message) => console.warn(message) };
  private readonly noticed = new Set<string>();
  private counter = 0;

  constructor(options: { preferred?: string } = {}) {
    this.register(referenceKernelBackend, { priority: 0 });
    const preferred = options.preferred?.trim();
    if (preferred && preferred !== 'auto') this.preferred = preferred;
  }

  /** Adds (or replaces, by name) a backend. Returns a function that unregisters it. */
  register(backend: KernelBackendV1, options: { priority?: number } = {}): () => void {
    if (!backend || typeof backend.name !== 'string' || backend.name.length === 0) {
      throw new InvalidArgumentError({ argument: 'backend.name', value: backend?.name, expected: 'a non-empty string' });
    }
    for (const method of ['windowAttentionScores', 'pool1d', 'topKPerRow', 'gatherRows'] as const) {
      if (typeof backend[method] !== 'function') {
        throw new InvalidArgumentError({ argument: `backend.${method}`, value: typeof backend[method], expected: 'a function' });
      }
    }
    const priority = options.priority ?? 0;
    if (!Number.isFinite(priority)) throw new InvalidArgumentError({ argument: 'priority', value: priority, expected: 'a finite number' });
    const entry: Entry = { backend, priority, order: this.counter++ };
    this.entries.set(backend.name, entry);
    return () => {
      if (this.entries.get(backend.name) === entry && backend.name !== referenceKernelBackend.name) this.entries.delete(backend.name);
    };
  }

  /**
   * Prefers a backend by name ('auto' or undefined: highest priority). A preferred backend that is not
   * registered is not an error — the native addon may register later — but `get()` falls back and says so
   * once. With `{ required: true }` a missing backend throws NativeUnavailableError instead.
   */
  use(name: string | undefined, options: { required?: boolean } = {}): void {
    const wanted = name === undefined || name === 'auto' ? undefined : name;
    if (wanted !== undefined && options.required && !this.entries.has(wanted)) {
      throw new NativeUnavailableError(this.missingMessage(wanted), { details: { backend: wanted, registered: [...this.entries.keys()] } });
    }
    this.preferred = wanted;
  }

  get(): KernelBackendV1 {
    if (this.preferred !== undefined) {
      const entry = this.entries.get(this.preferred);
      if (entry) return entry.backend;
      if (!this.noticed.has(this.preferred)) {
        this.noticed.add(this.preferred);
        this.logger.warn(`${this.missingMessage(this.preferred)} Using '${this.best().name}' instead.`);
      }
    }
    return this.best();
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  list(): KernelBackendInfo[] {
    const active = this.get().name;
    return [...this.entries.values()]
      .sort((a, b) => b.priority - a.priority || b.order - a.order)
      .map((e) => ({ name: e.backend.name, device: e.backend.device, priority: e.priority, active: e.backend.name === active }));
  }

  setLogger(logger: KernelLogger): void {
    this.logger = logger;
  }

  private best(): KernelBackendV1 {
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (!best || e.priority > best.priority || (e.priority === best.priority && e.order > best.order)) best = e;
    }
    return (best ?? { backend: referenceKernelBackend }).backend;
  }

  private missingMessage(name: string): string {
    const hint =
      name === 'native'
        ? ' Install and build @draft/cuda and call its registerNativeBackend() (the draft CLI and server do) to get the native kernels.'
        : '';
    return `[@draft/core] Kernel backend '${name}' was requested but is not registered.${hint}`;
  }
}

const GLOBAL_KEY = Symbol.for('@draft/core.kernelRegistry.v1');

/** The process-wide registry (shared across duplicated package copies). Initial preference: env DRAFT_KERNEL_BACKEND. */
export function globalKernelRegistry(): KernelRegistry {
  const holder = globalThis as unknown as Record<symbol, KernelRegistry | undefined>;
  let registry = holder[GLOBAL_KEY];
  if (!registry) {
    const env = typeof process !== 'undefined' ? process.env?.DRAFT_KERNEL_BACKEND : undefined;
    registry = new KernelRegistry({ preferred: env });
    holder[GLOBAL_KEY] = registry;
  }
  return registry;
}

/** Registers a kernel backend process-wide (the native addon uses priority 100). Returns an unregister function. */
export function registerKernelBackend(backend: KernelBackendV1, options: { priority?: number } = {}): () => void {
  return globalKernelRegistry().register(backend, options);
}

/** The kernel backend policies must call through; the TS reference unless a better one is registered or preferred. */
export function getKernelBackend(): KernelBackendV1 {
  return globalKernelRegistry().get();
}

/** Prefers a backend by name ('native', 'reference', 'auto'). See `KernelRegistry.use`. */
export function useKernelBackend(name: string | undefined, options: { required?: boolean } = {}): void {
  globalKernelRegistry().use(name, options);
}

export function listKernelBackends(): KernelBackendInfo[] {
  return globalKernelRegistry().list();
}

/** Redirects the one-time notices (e.g. to a test spy or an application logger). */
export function setKernelLogger(logger: KernelLogger): void {
  globalKernelRegistry().setLogger(logger);
}
