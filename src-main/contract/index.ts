/**
 * The contract between the renderer and the hosts: schemas (zod, pure) and the types
 * inferred from them. Nothing in this folder imports Node or DOM APIs.
 */
export * from './common.js';
export * from './workspace.js';
export * from './runs.js';
export * from './experiments.js';
export * from './jobs.js';
export * from './backends.js';
export * from './events.js';
export * from './api.js';
export * from './validate.js';
