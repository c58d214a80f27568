import type { Migration } from './migration.js';

/**
 * Per-item outcomes of an evaluation, so that two models scored on the same items can be
 * compared item by item (a paired test: eval/paired.ts) rather than by overlapping intervals.
 * - `outcomes`: one character per item in evaluation order, '1' correct and '0' wrong, under the
 *   row's metric; NULL for rows written before this step or by callers without item results.
 * - `items_key`: sha256 of the items' identities (id and answer, in order); two rows are paired
 *   only when their keys are equal.
 */
export const migration002: Migration = {
  version: 2,
  name: '002_evaluation_outcomes',
  up: /* sql */ `
ALTER TABLE evaluations ADD COLUMN outcomes TEXT
  CHECK (outcomes IS NULL OR (outcomes <> '' AND outcomes NOT GLOB '*[^01]*'));
ALTER TABLE evaluations ADD COLUMN items_key TEXT CHECK (items_key IS NULL OR length(items_key) = 64);
`,
};
