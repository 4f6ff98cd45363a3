import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, registerDecodeEngine, registeredDecodeEngine } from '../index.js';

describe('decode engine registry', () => {
  const undo: Array<() => void> = [];
  afterEach(() => {
    for (const u of undo.splice(0)) u();
  });

  it('holds the last registration, and unregistering restores none', () => {
    expect(registeredDecodeEngine()).toBeUndefined();
    undo.push(registerDecodeEngine({ name: 'a', module: '/x/a.js' }));
    const second = registerDecodeEngine({ name: 'b', module: '/x/b.js' });
    expect(registeredDecodeEngine()).toEqual({ name: 'b', module: '/x/b.js' });
    second();
    // 'a' was replaced, not stacked: nothing is registered after b goes.
    expect(registeredDecodeEngine()).toBeUndefined();
  });

  it('refuses an engine without a name or module, naming the argument', () => {
    expect(() => registerDecodeEngine({ name: '', module: '/x.js' })).toThrow(InvalidArgumentError);
    try {
      registerDecodeEngine({ name: 'a', module: 42 as unknown as string });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
      expect((error as InvalidArgumentError).message).toContain('engine.module');
    }
    expect(registeredDecodeEngine()).toBeUndefined();
  });
});
