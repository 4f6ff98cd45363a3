import { DraftError } from '@draft/core';

/** `listen` found the port taken by another process (EADDRINUSE). Code `ADDRESS_IN_USE`. */
export class AddressInUseError extends DraftError {
  readonly host: string;
  readonly port: number;
  constructor(options: { host: string; port: number; cause?: unknown }) {
    super('ADDRESS_IN_USE', `Port ${options.port} on ${options.host} is already in use by another process; pick another with --port (0 = any free port).`, {
      cause: options.cause,
      details: { host: options.host, port: options.port },
    });
    this.name = 'AddressInUseError';
    this.host = options.host;
    this.port = options.port;
  }
}
