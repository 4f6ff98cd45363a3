/**
 * Side-effect entry: `import '@draft/cuda/register'` registers the native kernels ('native', and 'cuda'
 * when a device exists) in @draft/core's kernel-backend registry. Without the addon it registers nothing;
 * `nativeInfo()` says why.
 */
import { registerNativeBackend } from './native-backend.js';

export const registration = registerNativeBackend();
