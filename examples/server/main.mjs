// Starts the OpenAI-compatible server in-process on a free port, asks one chat question with a per-request
// method (SpecPC, 64 prompt tokens kept), prints the answer and what the method did, and shuts down.
// `pnpm build && pnpm --filter @draft/example-server start`. From the command line the same server is `draft serve`.
import { fileURLToPath } from 'node:url';
import { startServer } from '@draft/server';

const models = fileURLToPath(new URL('../../models/', import.meta.url));
const server = await startServer({ target: `${models}target`, draft: `${models}draft`, port: 0, handleSignals: false });
try {
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      messages: [{ role: 'user', content: 'The key is under the third stone. Where is the key?' }],
      max_tokens: 16,
      draft: { method: 'specpc', budget: 64, window: 8 },
    }),
  });
  const body = await response.json();
  console.log(response.status, JSON.stringify(body.choices?.[0]?.message ?? body.error));
  console.log('usage.draft:', JSON.stringify(body.usage?.draft, ['method', 'budget', 'promptTokens', 'compressedPromptTokens', 'draftTokens']));
} finally {
  await server.close();
}
