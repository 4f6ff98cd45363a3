import { join } from 'node:path';
import { readJson } from './run-files.js';
import { gitRevision } from './run-meta.js';

/**
 * The code revisions that resumed runs were computed at. Resuming compares models and settings, not code (so
 * results survive unrelated commits; see run-fingerprint.ts). This changes nothing about resuming: it counts the
 * resumed runs whose `run_meta.json` records a git revision other than the current one, so that a bench can say
 * so in one note after its progress. Runs with no recorded revision are not counted, and there is no note when
 * the current revision is unknown.
 */
export class ResumedRevisions {
  private readonly counts = new Map<string, number>();
  private current: string | null | undefined;

  /** `current`: the revision to compare with (default: this code's, looked up at the first resumed run). */
  constructor(current?: string | null) {
    this.current = current;
  }

  /** A run was resumed from `runDir`: counts it when its run_meta.json records another known revision. */
  add(runDir: string): void {
    this.current ??= gitRevision();
    if (this.current === null) return;
    const recorded = recordedRevision(join(runDir, 'run_meta.json'));
    if (recorded === undefined || recorded === this.current) return;
    this.counts.set(recorded, (this.counts.get(recorded) ?? 0) + 1);
  }

  /**
   * `note: 12 resumed runs were computed at revision abc1234 (now def5678); pass a fresh --out to recompute them
   * after code changes` (one line, no newline), or '' when every resumed run was computed at the current revision.
   */
  note(): string {
    if (this.counts.size === 0 || !this.current) return '';
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    const revisions = [...this.counts.keys()].map(shortRevision);
    const runs = total === 1 ? '1 resumed run was' : `${total} resumed runs were`;
    const at = revisions.length === 1 ? `revision ${revisions[0]}` : `revisions ${revisions.join(', ')}`;
    return `note: ${runs} computed at ${at} (now ${shortRevision(this.current)}); pass a fresh --out to recompute ${total === 1 ? 'it' : 'them'} after code changes`;
  }
}

/** The `git` field of a run_meta.json, or undefined when absent, null or unreadable (resuming must not fail on it). */
function recordedRevision(path: string): string | undefined {
  try {
    const git = readJson<{ git?: unknown }>(path).git;
    return typeof git === 'string' && git.length > 0 ? git : undefined;
  } catch {
    return undefined;
  }
}

/** `abc1234` for a full revision, `abc1234-dirty` for one with modified files. */
function shortRevision(revision: string): string {
  const dirty = revision.endsWith('-dirty');
  const rev = dirty ? revision.slice(0, -'-dirty'.length) : revision;
  return `${rev.slice(0, 7)}${dirty ? '-dirty' : ''}`;
}
