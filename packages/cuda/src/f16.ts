/**
 * Float32 <-> IEEE binary16 bits for passing f16 keys / values to the native kernels (which convert them back
 * to f32 on load). The implementation lives in @draft/core (its TS references read f16 storage too).
 */
export { float16ToFloat32, float32ToFloat16 } from '@draft/core';
