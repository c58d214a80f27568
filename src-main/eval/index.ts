/**
 * Evaluation: per-domain scores with Wilson intervals (exact match by greedy generation,
 * multiple choice by option log-likelihood) and response perplexity, for any `Scorable`
 * (dense, LoRA-adapted, or MoE through an MLP hook). See README.md.
 */
export {
  llamaScorable,
  nllFromLogits,
  type LlamaHandle,
  type LlamaScorableOptions,
  type Scorable,
} from './scorable.js';
export {
  DEFAULT_MAX_NEW_TOKENS,
  aggregate,
  evaluate,
  type ChoiceDetail,
  type DomainScore,
  type EvalMetricName,
  type EvalProgress,
  type EvalResult,
  type EvaluateOptions,
  type ItemResult,
} from './evaluate.js';
export { perplexity, type PerplexityOptions, type PerplexityResult } from './perplexity.js';
export {
  encodePair,
  planBatches,
  scoreRows,
  truncateRow,
  type BatchOptions,
  type ScoreRow,
} from './score.js';
export {
  routingAnalysis,
  routingHighlights,
  summarizeRouting,
  type RoutingAnalysisOptions,
  type RoutingModel,
  type RoutingStat,
  type RoutingSummary,
} from './routing.js';
export { Z95, wilsonInterval } from './stats.js';
