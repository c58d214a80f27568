/** Merge methods (per tensor, registered) and the streaming whole-model merger. */
export * from './methods.js';
export * from './model.js';
export { dareLabel, maskPlan, MaskStream, type DareRescale } from './sparsify.js';
