/**
 * Data layer: the embedded multi-domain suite (arith / code / qa / mc over a generated world),
 * the instruction template, answer matching, and JSONL readers/writers for real data.
 */
export * from './types.js';
export {
  ANSWER_PREFIX,
  FINAL_ANSWER_MARKER,
  PROMPT_PREFIX,
  RESPONSE_END,
  choiceContinuation,
  cutAtResponseEnd,
  extractFinalAnswer,
  formatChat,
  formatPrompt,
  isCorrect,
  normalizeAnswer,
  renderExample,
  type ChatTurn,
} from './template.js';
export { DEFAULT_WORLD_SIZE, MIN_WORLD_SIZE, PATHS, RELATIONS, WorldIndex, generateWorld } from './world.js';
export { DEFAULT_DIFFICULTY, DEFAULT_HELD_OUT_FRACTION, buildSuite, normalizePrompt } from './suite.js';
export { DEFAULT_CORPUS_DOCS, DEFAULT_MIX, MAX_DOC_BYTES } from './corpus.js';
export { CODE_PROMPT_HEADER } from './code.js';
export {
  PRETRAIN_DOC_SEPARATOR,
  exportSuite,
  readEvalJsonl,
  readInstructionJsonl,
  readPretrainText,
  writeFileAtomic,
  writeJsonl,
  type ExportedSuite,
} from './jsonl.js';
