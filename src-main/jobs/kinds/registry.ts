/**
 * Job implementations by kind, loaded lazily inside the worker process. Every kind in
 * `catalog.ts` has an entry here (checked by the type below and by a unit test).
 */
import type { JobFn, JobRegistry } from '../job-runner.js';
import type { JobKindName } from './catalog.js';

export const JOB_REGISTRY: JobRegistry & Record<JobKindName, () => Promise<JobFn>> = {
  demo: async () => (await import('./demo.js')).runDemo,
  pretrain: async () => (await import('./pretrain.js')).runPretrain,
  prepare: async () => (await import('./prepare.js')).runPrepare,
  eval: async () => (await import('./eval.js')).runEval,
  expand: async () => (await import('./expand.js')).runExpand,
  route: async () => (await import('./route.js')).runRoute,
  upcycle: async () => (await import('./upcycle.js')).runUpcycle,
  plan: async () => (await import('./plan.js')).runPlanJob,
};
