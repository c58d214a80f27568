/**
 * The job kinds the workbench knows: name, description and config schema. Pure (zod only),
 * so the host validates a job's config before it reaches the worker and the renderer can
 * list the kinds. The implementations are in `registry.ts` (worker process only).
 */
import { z } from 'zod';
import type { JobKindInfo } from '../../contract/index.js';
import { BPE_MAX_VOCAB, BPE_MIN_VOCAB } from '../../train/bpe.js';

export interface JobKindSpec<S extends z.ZodType = z.ZodType> extends JobKindInfo {
  readonly config: S;
}

export const DemoConfig = z.strictObject({
  /** Number of steps to count. */
  steps: z.number().int().min(1).max(1_000_000).default(20),
  /** Pause between steps (ms). */
  intervalMs: z.number().int().min(0).max(60_000).default(100),
  /** Seeds the noise of the synthetic loss curve. */
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  /** Tokens per step, recorded with each metric point. */
  tokensPerStep: z.number().int().min(1).max(1e9).default(512),
  /** Fail with an error at this step (for testing failure paths). */
  failAt: z.number().int().min(1).optional(),
});
export type DemoConfig = z.output<typeof DemoConfig>;

const BackendRequest = z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);

/** Pre-train a small Llama from scratch (the embedded base model's recipe): byte-level, or on a BPE learned from the corpus. */
export const PretrainConfig = z
  .strictObject({
    backend: BackendRequest.default('auto'),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    /**
     * Continue pre-training from this model directory (its architecture and weights) instead of
     * a random initialisation; `model` is then ignored. Optimizer state starts fresh.
     */
    init: z.string().min(1).optional(),
    /**
     * Learn a byte-level BPE of this many tokens from the corpus (train/bpe.ts) and train on it;
     * absent: the byte tokenizer (vocab 256), or the `init` model's own tokenizer.
     */
    vocab: z.number().int().min(BPE_MIN_VOCAB).max(BPE_MAX_VOCAB).optional(),
    /** The embedded world's corpus (by suite seed and size) or a text file (documents separated by blank lines). */
    corpus: z
      .discriminatedUnion('source', [
        z.strictObject({
          source: z.literal('embedded'),
          suiteSeed: z.number().int().min(0).default(1),
          docs: z.number().int().min(10).max(5_000_000).default(20_000),
          /** Shares of the document kinds (default DEFAULT_MIX in data/corpus.ts). */
          mix: z
            .strictObject({
              knowledge: z.number().min(0).optional(),
              arith: z.number().min(0).optional(),
              code: z.number().min(0).optional(),
              instruct: z.number().min(0).optional(),
              recall: z.number().min(0).optional(),
            })
            .optional(),
          /** Weights of difficulty levels 1..5 for arith/code documents and instruct pairs. */
          levels: z.array(z.number().min(0)).length(5).optional(),
        }),
        z.strictObject({ source: z.literal('file'), path: z.string().min(1) }),
      ])
      .default({ source: 'embedded', suiteSeed: 1, docs: 20_000 }),
    model: z
      .strictObject({
        hiddenSize: z.number().int().min(8).max(8192).default(128),
        numLayers: z.number().int().min(1).max(128).default(4),
        numHeads: z.number().int().min(1).max(128).default(4),
        numKvHeads: z.number().int().min(1).max(128).optional(),
        intermediateSize: z.number().int().min(8).max(65536).default(344),
        maxPositionEmbeddings: z
          .number()
          .int()
          .min(16)
          .max(1 << 20)
          .default(512),
        ropeTheta: z.number().positive().default(10000),
        tieWordEmbeddings: z.boolean().default(false),
      })
      .default({
        hiddenSize: 128,
        numLayers: 4,
        numHeads: 4,
        intermediateSize: 344,
        maxPositionEmbeddings: 512,
        ropeTheta: 10000,
        tieWordEmbeddings: false,
      }),
    seqLen: z
      .number()
      .int()
      .min(8)
      .max(1 << 16)
      .default(128),
    batchSize: z.number().int().min(1).max(4096).default(16),
    gradAccum: z.number().int().min(1).max(1024).default(1),
    /** Optimizer steps; when absent, `epochs` over the packed corpus. */
    steps: z.number().int().min(1).optional(),
    epochs: z.number().positive().max(1000).default(1),
    lr: z.number().positive().max(1).default(2e-3),
    warmupRatio: z.number().min(0).max(0.5).default(0.03),
    weightDecay: z.number().min(0).max(1).default(0.1),
    clipNorm: z.number().min(0).default(1),
    checkpointEverySteps: z.number().int().min(1).optional(),
    /** Keep only the newest N intermediate checkpoints. */
    keepLast: z.number().int().min(1).optional(),
  })
  .superRefine((c, ctx) => {
    const m = c.model;
    if (m.hiddenSize % m.numHeads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'hiddenSize'],
        message: `must be divisible by numHeads (${m.numHeads})`,
      });
    }
    if (m.numKvHeads !== undefined && m.numHeads % m.numKvHeads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'numKvHeads'],
        message: `must divide numHeads (${m.numHeads})`,
      });
    }
    if (c.seqLen > m.maxPositionEmbeddings && c.init === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['seqLen'],
        message: `exceeds model.maxPositionEmbeddings (${m.maxPositionEmbeddings})`,
      });
    }
    if (c.vocab !== undefined && c.init !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['vocab'],
        message: 'cannot be combined with init (the model continues with its own tokenizer)',
      });
    }
    if (c.corpus.source === 'embedded' && c.corpus.levels?.every((w) => w === 0)) {
      ctx.addIssue({ code: 'custom', path: ['corpus', 'levels'], message: 'must have a positive weight' });
    }
    const mix = c.corpus.source === 'embedded' ? c.corpus.mix : undefined;
    if (mix && Object.values(mix).every((w) => w === 0)) {
      ctx.addIssue({ code: 'custom', path: ['corpus', 'mix'], message: 'must have a positive weight' });
    }
  });
export type PretrainConfig = z.output<typeof PretrainConfig>;

const LoraSpecConfig = z.strictObject({
  r: z.number().int().min(1).max(1024).default(8),
  alpha: z.number().positive().default(16),
  targets: z
    .array(z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']))
    .min(1)
    .default(['gate_proj', 'up_proj', 'down_proj']),
});

const DifficultyLevel = z.number().int().min(1).max(5);
const DifficultyPerDomain = z.strictObject({
  arith: DifficultyLevel.optional(),
  code: DifficultyLevel.optional(),
  qa: DifficultyLevel.optional(),
  mc: DifficultyLevel.optional(),
});

/** Instruction data: the embedded suite (by seed and size) or JSONL files. */
export const DataSource = z.discriminatedUnion('source', [
  z.strictObject({
    source: z.literal('embedded'),
    suiteSeed: z.number().int().min(0).default(1),
    trainPerDomain: z.number().int().min(1).max(1_000_000).default(400),
    evalPerDomain: z.number().int().min(1).max(100_000).default(100),
    /** One level 1..5 for every domain, or levels per domain (the others keep their default). */
    difficulty: z.union([DifficultyLevel, DifficultyPerDomain]).optional(),
  }),
  z.strictObject({ source: z.literal('files'), train: z.string().min(1), eval: z.string().min(1) }),
]);
/** `DataSource`, the embedded suite at its default size when absent. */
export const DataConfig = DataSource.default({
  source: 'embedded',
  suiteSeed: 1,
  trainPerDomain: 400,
  evalPerDomain: 100,
});
export type DataConfig = z.output<typeof DataConfig>;

/** The optimizer and batching options Stage 1 and Stage 4 share (AdamW, cosine with warm-up). */
const FineTuneFields = {
  warmupRatio: z.number().min(0).max(0.5).default(0.03),
  weightDecay: z.number().min(0).max(1).default(0),
  clipNorm: z.number().min(0).default(1),
  batchSize: z.number().int().min(1).max(4096).default(16),
  gradAccum: z.number().int().min(1).max(1024).default(1),
  maxSeqLen: z
    .number()
    .int()
    .min(8)
    .max(1 << 16)
    .default(256),
};

/** How the stages that score a model evaluate it. */
const EvalFields = {
  evalBatchSize: z.number().int().min(1).max(4096).default(32),
  evalMaxNewTokens: z.number().int().min(1).max(4096).default(48),
};

/** Stage 1: instruction-tune the base model and score every checkpoint on every domain. */
export const PrepareConfig = z.strictObject({
  backend: BackendRequest.default('auto'),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /** Base model directory (Hugging Face layout); default: the shipped tiny base model. */
  base: z.string().min(1).optional(),
  data: DataConfig,
  /** 'full' fine-tunes every weight (the dense full-SFT baseline; not a source of experts). */
  mode: z.enum(['lora', 'ffn', 'full']).default('lora'),
  lora: LoraSpecConfig.default({ r: 8, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj'] }),
  epochs: z.number().positive().max(100).default(2),
  /** Default: 2e-4 (LoRA) / 2e-5 (FFN), the paper's rates for 7B models. */
  lr: z.number().positive().max(1).optional(),
  ...FineTuneFields,
  /** Checkpoint cadence in epochs (0.25 → 8 checkpoints over 2 epochs). */
  checkpointEvery: z.number().positive().max(100).default(0.25),
  ...EvalFields,
  /** Also score the base model before training (step 0 of the table). */
  evalBase: z.boolean().default(true),
});
export type PrepareConfig = z.output<typeof PrepareConfig>;

/** Stage 2: grow the pool of a prepare run's checkpoints to n experts (UpIT's genetic algorithm). */
export const ExpandConfig = z
  .strictObject({
    /** Accepted for symmetry with the other kinds; expansion runs on the host (no tensor backend). */
    backend: BackendRequest.optional(),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    /** Run id of a finished Stage 1 (prepare) run whose checkpoints are the m source experts. */
    prepareRun: z.number().int().min(1),
    /** Checkpoint steps to use; default: every 'cadence'/'final' checkpoint, by step. */
    checkpoints: z.array(z.number().int().min(0)).min(2).optional(),
    /** Of those, the first or second half by step (the paper's checkpoint-half ablation). */
    subset: z.enum(['all', 'first-half', 'second-half']).default('all'),
    /** Target pool size (≥ the m checkpoints). */
    n: z.number().int().min(2).max(4096),
    /** DARE drop probability, [0, 1). */
    p: z.number().min(0).lt(1, 'must be in [0, 1)').default(0.5),
    /** Clamp α ~ U(0, 1) to [lo, hi]. */
    alphaClamp: z
      .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
      .refine(([lo, hi]) => lo <= hi, 'must be [lo, hi] with lo ≤ hi')
      .optional(),
    metric: z.enum(['cosine', 'l2']).default('cosine'),
    selection: z.enum(['most-distant', 'random']).default('most-distant'),
    /** LoRA mode: DARE on ΔW then SVD back to rank r ('delta'), or on the factors ('factor', fast). */
    loraMergeSpace: z.enum(['delta', 'factor']).default('delta'),
  })
  .superRefine((c, ctx) => {
    if (c.checkpoints && new Set(c.checkpoints).size !== c.checkpoints.length) {
      ctx.addIssue({ code: 'custom', path: ['checkpoints'], message: 'lists a step twice' });
    }
  });
export type ExpandConfig = z.output<typeof ExpandConfig>;

/** Stage 3: routing vectors pre-trained on perplexity-assigned seed data. */
export const RouteConfig = z.strictObject({
  backend: BackendRequest.default('auto'),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /** Run id of a finished expand (Stage 2) run: its pool is the experts. */
  poolRun: z.number().int().min(1),
  /** Where the seed sample comes from; default: the prepare run's training data. */
  data: DataSource.optional(),
  /** Share of the training set in the seed sample D_s. */
  fraction: z.number().gt(0).max(1).default(0.01),
  /** At least this many seed samples per expert. */
  minPerExpert: z.number().int().min(1).max(1_000_000).default(32),
  /**
   * Every expert's bucket gets at least this many samples (reassigned from fuller buckets, least
   * perplexity lost first), so each routing vector has data; 0 keeps the plain argmin (an empty
   * bucket leaves its expert's vectors at their random initialization).
   */
  minBucket: z.number().int().min(0).default(8),
  /** At most this many seed samples per expert (spill-over to the next-best expert). */
  cap: z.number().int().min(1).optional(),
  /** 'ppl': bucket = argmin perplexity (UpIT); 'random': random buckets (the ablation). */
  assignment: z.enum(['ppl', 'random']).default('ppl'),
  epochs: z.number().positive().max(100).default(4),
  /** Learning rate of the experts' own parameters; default: the prepare run's. */
  lr: z.number().positive().max(1).optional(),
  /** Effective learning rate of the routing vectors. */
  routerLr: z.number().positive().max(10).default(1e-2),
  /** Weight of L_lm in λ·L_lm + (1 − λ)·L_aux (paper: 0.5). */
  lmWeight: z.number().min(0).max(1).default(0.5),
  /** Train only the routing vectors; the experts stay as Stage 2 left them. */
  freezeExpert: z.boolean().default(false),
  /** Add the other buckets' tokens to L_aux with target 0. */
  negatives: z.boolean().default(false),
  /** Scale every router row to the layer's median row norm. */
  rescale: z.enum(['median', 'none']).default('median'),
  batchSize: z.number().int().min(1).max(4096).default(8),
  maxSeqLen: z
    .number()
    .int()
    .min(8)
    .max(1 << 16)
    .default(256),
  /** Batch size for the per-expert perplexity pass. */
  scoreBatchSize: z.number().int().min(1).max(4096).default(32),
});
export type RouteConfig = z.output<typeof RouteConfig>;

/** Stage 4: assemble the MoE from a pool and its router, post-train it with load balancing. */
export const UpcycleConfig = z
  .strictObject({
    backend: BackendRequest.default('auto'),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    /**
     * Where the experts come from: 'pool' — the experts of `poolRun` (UpIT); 'copies' — numExperts
     * copies of `prepareRun`'s final checkpoint (vanilla upcycling); 'random' — numExperts freshly
     * initialized LoRA experts over the base (LoRAMoE-style; LoRA prepare runs only).
     */
    init: z.enum(['pool', 'copies', 'random']).default('pool'),
    /** Run id of a finished route (Stage 3) or expand (Stage 2) run (init 'pool'). */
    poolRun: z.number().int().min(1).optional(),
    /** Run id of a finished prepare run (init 'copies' / 'random'): base model, mode and data. */
    prepareRun: z.number().int().min(1).optional(),
    /** Number of experts (init 'copies' / 'random'). */
    numExperts: z.number().int().min(2).max(4096).optional(),
    /**
     * 'pretrained': the route run's router (UpIT); 'random': N(0, 0.02²) (vanilla upcycling, the
     * "w/o router init" ablation); 'auto': pretrained when the pool run is a route run.
     */
    router: z.enum(['auto', 'pretrained', 'random']).default('auto'),
    /** Experts per token (≤ the pool size). */
    topK: z.number().int().min(1).max(4096).default(2),
    /** Post-training and evaluation data; default: the prepare run's. */
    data: DataSource.optional(),
    epochs: z.number().positive().max(100).default(2),
    /** Default: the prepare run's learning rate. */
    lr: z.number().positive().max(1).optional(),
    /** λ of the load-balancing loss. */
    auxCoef: z.number().min(0).max(100).default(0.01),
    /** Coefficient of the router z-loss (0: off). */
    zCoef: z.number().min(0).max(100).default(0),
    ...FineTuneFields,
    /** Checkpoint cadence in epochs. */
    checkpointEvery: z.number().positive().max(100).default(1),
    ...EvalFields,
  })
  .superRefine((c, ctx) => {
    const need = (key: 'poolRun' | 'prepareRun' | 'numExperts', why: string) => {
      if (c[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `required ${why}` });
    };
    const forbid = (key: 'poolRun' | 'prepareRun' | 'numExperts', why: string) => {
      if (c[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `not used ${why}` });
    };
    if (c.init === 'pool') {
      need('poolRun', "with init 'pool'");
      forbid('prepareRun', "with init 'pool' (the pool run names its prepare run)");
      forbid('numExperts', "with init 'pool' (the pool's size is the number of experts)");
    } else {
      need('prepareRun', `with init '${c.init}'`);
      need('numExperts', `with init '${c.init}'`);
      forbid('poolRun', `with init '${c.init}'`);
      if (c.numExperts !== undefined && c.topK > c.numExperts)
        ctx.addIssue({ code: 'custom', path: ['topK'], message: `must be ≤ numExperts (${c.numExperts})` });
    }
  });
export type UpcycleConfig = z.output<typeof UpcycleConfig>;

/** Score a model directory on every domain of an evaluation set. */
export const EvalConfig = z.strictObject({
  backend: BackendRequest.default('auto'),
  /** Model directory (Hugging Face layout); default: the shipped tiny base model. */
  model: z.string().min(1).optional(),
  data: DataConfig,
  batchSize: z.number().int().min(1).max(4096).default(32),
  maxNewTokens: z.number().int().min(1).max(4096).default(48),
  maxSeqLen: z
    .number()
    .int()
    .min(8)
    .max(1 << 16)
    .default(256),
});
export type EvalConfig = z.output<typeof EvalConfig>;

/** Run a plan file (the batch runner) inside the worker; the plan's jobs report as jobs of their own. */
export const PlanJobConfig = z.strictObject({
  /** A plan file in the shipped plans folder or the workspace's `plans/` folder. */
  file: z.string().min(1).max(4096),
});
export type PlanJobConfig = z.output<typeof PlanJobConfig>;

function spec<S extends z.ZodType>(s: JobKindSpec<S>): JobKindSpec<S> {
  return s;
}

export const JOB_KINDS = {
  demo: spec({
    kind: 'demo',
    title: 'Demo: count steps',
    description:
      'Counts steps at a fixed pace and logs a synthetic decaying loss; exercises progress, ' +
      'metrics, logs and cancellation end to end without loading a model.',
    createsRun: true,
    config: DemoConfig,
  }),
  pretrain: spec({
    kind: 'pretrain',
    title: 'Pre-train a base model',
    description:
      'Pre-trains a small Llama from scratch (byte-level, or on a BPE learned from the corpus) on the embedded world corpus or a text file; ' +
      'checkpoints and the final Hugging Face-layout model go to the run folder.',
    createsRun: true,
    config: PretrainConfig,
  }),
  prepare: spec({
    kind: 'prepare',
    title: 'Stage 1: prepare experts',
    description:
      'Instruction-tunes the base model (LoRA or FFN), keeps a checkpoint every 0.25 epoch and scores each ' +
      'checkpoint on every domain: the checkpoint × domain table that picks the experts.',
    createsRun: true,
    config: PrepareConfig,
  }),
  eval: spec({
    kind: 'eval',
    title: 'Evaluate a model',
    description:
      'Scores a model directory on every domain (exact match or option log-likelihood) with 95% intervals.',
    createsRun: true,
    config: EvalConfig,
  }),
  expand: spec({
    kind: 'expand',
    title: 'Stage 2: expand the expert pool',
    description:
      "Grows a prepare run's m checkpoints to n experts: repeatedly merges the most distant unused pair of " +
      'task vectors with DARE and a random α, and records every expert, its lineage and the distance matrix.',
    createsRun: true,
    config: ExpandConfig,
  }),
  route: spec({
    kind: 'route',
    title: 'Stage 3: pre-optimize the router',
    description:
      'Scores a seed sample (1% of the training data) under every expert of an expand run, gives each sample to ' +
      'the expert with the lowest perplexity, and trains one routing vector per expert and layer on its bucket; ' +
      'stores the bucket sizes, the router and the trained experts.',
    createsRun: true,
    config: RouteConfig,
  }),
  upcycle: spec({
    kind: 'upcycle',
    title: 'Stage 4: upcycle to an MoE',
    description:
      'Assembles the MoE from a pool of experts and its pre-trained (or a random) router, post-trains it with ' +
      'the load-balancing loss, exports it (Mixtral or base + PEFT adapters) and scores it per domain with ' +
      'the routing table.',
    createsRun: true,
    config: UpcycleConfig,
  }),
  plan: spec({
    kind: 'plan',
    title: 'Run an experiment plan',
    description:
      "Runs a plan's jobs in dependency order under its experiment, sharing identical jobs between variants; " +
      'finished jobs are skipped and interrupted ones resumed when the plan is run again.',
    createsRun: false,
    config: PlanJobConfig,
  }),
} as const;

export type JobKindName = keyof typeof JOB_KINDS;

export function jobKindSpec(kind: string): JobKindSpec | undefined {
  return Object.prototype.hasOwnProperty.call(JOB_KINDS, kind) ? JOB_KINDS[kind as JobKindName] : undefined;
}

export function listJobKinds(): JobKindInfo[] {
  return Object.values(JOB_KINDS).map(({ kind, title, description, createsRun }) => ({
    kind,
    title,
    description,
    createsRun,
  }));
}
