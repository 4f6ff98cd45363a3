#!/usr/bin/env node
// `node examples/server/dist/main.js [flags]` is `draft serve [flags]` (one implementation of the flags).
import { runCli } from '@draft/cli';

process.exitCode = await runCli(['serve', ...process.argv.slice(2)]);
