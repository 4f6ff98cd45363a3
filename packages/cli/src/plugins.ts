import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '@draft/core';

/**
 * Loads third-party policy plugins named by `--plugin` (a path or a package name). A plugin registers its
 * policies with `registerPolicy` from @draft/core, either on import or from an exported `register()`.
 */
export async function loadPlugins(specs: readonly string[]): Promise<void> {
  for (const spec of specs) {
    const isPath = spec.startsWith('.') || isAbsolute(spec);
    // A device or FIFO given as a path would be read by the module loader without end (/dev/zero hung forever).
    if (isPath && !spec.includes('\0') && statSync(spec, { throwIfNoEntry: false })?.isFile() === false) {
      throw new InvalidArgumentError({ argument: '--plugin', value: spec, expected: 'a module file (this path is a directory, device or pipe)' });
    }
    const target = isPath ? pathToFileURL(resolve(spec)).href : spec;
    let mod: { register?: unknown; default?: unknown };
    try {
      mod = await import(target);
    } catch (cause) {
      throw new InvalidArgumentError({ argument: '--plugin', value: spec, expected: 'an importable module path or package name', cause });
    }
    const register = typeof mod.register === 'function' ? mod.register : typeof mod.default === 'function' ? mod.default : undefined;
    if (register) await (register as () => unknown)();
  }
}
