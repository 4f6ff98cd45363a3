import { range as coreRange } from '@draft/core';
import { describe, expect, it } from 'vitest';
import * as shared from './shared.js';
import { selectRecency } from './recency.js';
import { selectSpecPrefillChunks } from './spec-prefill.js';

describe('prompt-compression helpers', () => {
  it("use core's argument helpers and core's range(start, end); no local copies", () => {
    // A local range(start, length) next to core's range(start, end) invites the wrong call.
    expect(Object.keys(shared).sort()).toEqual(['buildResult', 'readInput']);
    expect(Array.from(coreRange(3, 6))).toEqual([3, 4, 5]);
    expect(Array.from(selectRecency({ promptLength: 6, budget: 3 }))).toEqual([3, 4, 5]);
    // The last chunk alone holds ≥ C tokens: its last C positions.
    expect(Array.from(selectSpecPrefillChunks({ scores: new Array(10).fill(0), budget: 3, chunkSize: 32 }))).toEqual([7, 8, 9]);
  });
});
