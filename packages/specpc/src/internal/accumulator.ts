/**
 * SpecPC's aggregation over layers and steps (reference `AttentionCache`): per step (the prompt window is step
 * 0, every fed-back draft token one more step) the layer scores are combined, then the steps are combined,
 * keys truncated to the n prompt tokens. 'max' takes maxima throughout; 'mean' takes true means (the reference
 * sums; port decision "mean really means mean").
 */
export class SpecPCAccumulator {
  private readonly total: Float64Array;
  private readonly step: Float64Array;
  private steps = 0;
  private layersInStep = 0;
  private open = false;

  constructor(
    readonly promptLength: number,
    readonly op: 'max' | 'mean',
  ) {
    this.total = new Float64Array(promptLength).fill(op === 'max' ? -Infinity : 0);
    this.step = new Float64Array(promptLength);
  }

  beginStep(): void {
    this.step.fill(this.op === 'max' ? -Infinity : 0);
    this.layersInStep = 0;
    this.open = true;
  }

  /**
   * One layer's scores per KV head, (rows, keyCount) with keyCount ≥ n: reduced over rows (max, or mean —
   * rows are KV heads of equal group size, or query heads) and truncated to the n prompt keys.
   */
  addLayer(scores: Float32Array, rows: number, keyCount: number): void {
    const n = this.promptLength;
    const layer = new Float64Array(n).fill(this.op === 'max' ? -Infinity : 0);
    for (let r = 0; r < rows; r++) {
      const off = r * keyCount;
      if (this.op === 'max') {
        for (let j = 0; j < n; j++) if (scores[off + j] > layer[j]) layer[j] = scores[off + j];
      } else for (let j = 0; j < n; j++) layer[j] += scores[off + j];
    }
    if (this.op === 'max') {
      for (let j = 0; j < n; j++) if (layer[j] > this.step[j]) this.step[j] = layer[j];
    } else for (let j = 0; j < n; j++) this.step[j] += layer[j] / rows;
    this.layersInStep++;
  }

  endStep(): void {
    if (!this.open) return;
    this.open = false;
    if (this.layersInStep === 0) return;
    if (this.op === 'max') {
      for (let j = 0; j < this.promptLength; j++) if (this.step[j] > this.total[j]) this.total[j] = this.step[j];
    } else for (let j = 0; j < this.promptLength; j++) this.total[j] += this.step[j] / this.layersInStep;
    this.steps++;
  }

  /** s, (n): higher score = keep. */
  result(): Float32Array {
    this.endStep();
    const out = new Float32Array(this.promptLength);
    if (this.steps === 0) return out;
    for (let j = 0; j < this.promptLength; j++) out[j] = this.op === 'max' ? this.total[j] : this.total[j] / this.steps;
    return out;
  }
}
