/**
 * `node:assert/strict` in a page: the npm port of Node's `assert` module (its strict
 * mode, the same deep-equality algorithm), mapped in by tests/browser/import_map.json
 * when the browser suite is bundled.
 *
 * @module
 */
import "./process_env.ts"; // first: npm:assert reads process.env at load
import assert from "npm:assert@2.1.0";

const strict = assert.strict;
export default strict;
export const {
  ok,
  equal,
  notEqual,
  deepEqual,
  notDeepEqual,
  throws,
  doesNotThrow,
  rejects,
  doesNotReject,
  match,
  doesNotMatch,
  fail,
} = strict;
