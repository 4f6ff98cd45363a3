/**
 * Child-process entry of `runEngineInChild`: reads one `EngineJob` (JSON) from stdin, runs it, prints one JSON line
 * (`EngineResult`, or `{ "error": message }`) on stdout. Its own process, so its peak RSS is the engine's alone.
 */
import { type EngineJob, runEngine } from './engines.js';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
try {
  const result = await runEngine(JSON.parse(input) as EngineJob);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
  process.exitCode = 1;
}
