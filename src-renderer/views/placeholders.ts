/**
 * What each not-yet-built view will show, for its empty state. Plain statements of what is
 * coming — no sample data.
 */
import type { ViewId } from '../lib/router.svelte.js';

export interface Placeholder {
  title: string;
  lead: string;
  items: string[];
}

export const PLACEHOLDERS: Record<Exclude<ViewId, 'runs'>, Placeholder> = {
  experiments: {
    title: 'No experiments yet',
    lead: 'An experiment groups the runs of one UpIT plan — prepare, expand, route, upcycle — with its baselines and ablations.',
    items: [
      'each experiment with its plan, stages and their status',
      'its runs by variant and seed',
      'starting a new experiment from a plan (not available in this build yet)',
    ],
  },
  checkpoints: {
    title: 'No checkpoints to show yet',
    lead: 'Stage 1 (prepare) saves a checkpoint every 0.25 epoch and evaluates each one on every domain.',
    items: [
      'the checkpoint × domain score table of each prepare run',
      'which checkpoint is best on which domain — the expert candidates',
    ],
  },
  expansion: {
    title: 'No expansion runs yet',
    lead: 'Stage 2 grows the expert pool from m checkpoints to n experts with a genetic algorithm.',
    items: [
      'the distance matrix between experts (1 − cosine of task vectors)',
      'the parent pairs chosen, their merge weights α/β and DARE drop rate',
      'the lineage tree of the pool',
    ],
  },
  router: {
    title: 'No routing runs yet',
    lead: 'Stage 3 gives each sampled training example to its lowest-perplexity expert and pre-trains one routing vector per expert.',
    items: [
      'seed bucket sizes per expert',
      'per-layer expert load and router entropy after upcycling',
      'routing by domain',
    ],
  },
  compare: {
    title: 'Nothing to compare yet',
    lead: 'Compare runs side by side: the paper’s baselines and ablations against UpIT.',
    items: [
      'overlaid loss curves of the chosen runs',
      'evaluation scores per domain, mean ± confidence interval over seeds',
    ],
  },
  reports: {
    title: 'No reports yet',
    lead: 'Reports export an experiment’s tables and figures.',
    items: ['exported reports of this workspace, with their format and date', 'exporting a new report'],
  },
};
