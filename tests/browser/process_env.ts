/**
 * An empty `process` for the page: npm:assert (through npm:util, Node's `util` for browsers)
 * reads `process.env` at load and `process.stderr` when it formats a message. assert.ts
 * imports this module first, so that it runs before theirs.
 *
 * @module
 */
const g = globalThis as { process?: unknown };
g.process ??= { env: {} };
