/**
 * An in-memory workspace implementing the job layer's ports: for tests of the API service
 * and the job runner, and as the reference semantics the store adapter must match.
 */
import type {
  Checkpoint,
  Evaluation,
  MetricSeries,
  MetricSummary,
  RunDetail,
  RunListResponse,
} from '../../../src-main/contract/index.js';
import type {
  MetricSink,
  RunRecorder,
  SyncRunsRepository,
  SyncWorkspaceHandle,
} from '../../../src-main/jobs/ports.js';

interface Point {
  step: number;
  value: number;
  tokens: number | null;
}

export class MemoryWorkspace implements SyncWorkspaceHandle {
  readonly store = null;
  readonly runsById = new Map<number, RunDetail>();
  readonly metrics = new Map<number, Map<string, Point[]>>();
  readonly checkpoints: Checkpoint[] = [];
  readonly evaluations: Evaluation[] = [];
  private nextId = 1;
  closed = false;

  constructor(
    readonly dir = '/memory',
    private readonly now: () => number = Date.now,
  ) {}

  close(): void {
    this.closed = true;
  }

  /** Adds metric points directly (test seeding). Points replace earlier ones at the same step. */
  addMetrics(runId: number, key: string, points: readonly Point[]): void {
    const byKey = this.metrics.get(runId) ?? new Map<string, Point[]>();
    this.metrics.set(runId, byKey);
    const merged = new Map((byKey.get(key) ?? []).map((p) => [p.step, p] as const));
    for (const p of points) merged.set(p.step, p);
    byKey.set(
      key,
      [...merged.values()].sort((a, b) => a.step - b.step),
    );
  }

  readonly recorder: RunRecorder = {
    createRun: (run) => {
      const id = this.nextId++;
      this.runsById.set(id, {
        id,
        experimentId: run.experimentId ?? null,
        parentRunId: run.parentRunId ?? null,
        kind: run.kind,
        variant: run.variant ?? null,
        seed: run.seed ?? null,
        status: 'queued',
        backend: null,
        createdAt: this.now(),
        startedAt: null,
        finishedAt: null,
        wallSeconds: null,
        error: null,
        config: run.config,
      });
      return id;
    },
    startRun: (runId, info) => {
      const r = this.require(runId);
      if (r.status !== 'queued') throw new Error(`run ${runId} is ${r.status}, only a queued run can start`);
      Object.assign(r, { status: 'running', startedAt: this.now(), backend: info.backend ?? 'none' });
    },
    finishRun: (runId, outcome) => {
      const r = this.require(runId);
      if (r.status !== 'queued' && r.status !== 'running')
        throw new Error(`run ${runId} is already ${r.status}`);
      const now = this.now();
      Object.assign(r, {
        status: outcome.status,
        error: outcome.error ?? null,
        finishedAt: now,
        wallSeconds: r.startedAt === null ? null : (now - r.startedAt) / 1000,
      });
    },
    metricSink: (runId): MetricSink => {
      this.require(runId);
      const pending: { key: string; p: Point }[] = [];
      const flush = (): void => {
        for (const { key, p } of pending.splice(0)) this.addMetrics(runId, key, [p]);
      };
      return {
        write: (key, step, value, tokens) =>
          void pending.push({ key, p: { step, value, tokens: tokens ?? null } }),
        flush,
        close: flush,
      };
    },
  };

  readonly runs: SyncRunsRepository = {
    schemaVersion: () => 1,
    listRuns: (q): RunListResponse => {
      let runs = [...this.runsById.values()].sort((a, b) => b.id - a.id);
      if (q.experimentId !== undefined) runs = runs.filter((r) => r.experimentId === q.experimentId);
      if (q.statuses) runs = runs.filter((r) => q.statuses!.includes(r.status));
      if (q.kinds && q.kinds.length > 0) runs = runs.filter((r) => q.kinds!.includes(r.kind));
      const needle = q.search?.trim().toLowerCase();
      if (needle) {
        runs = runs.filter(
          (r) =>
            r.kind.includes(needle) ||
            (r.variant ?? '').toLowerCase().includes(needle) ||
            String(r.id) === needle.replace(/^#/, ''),
        );
      }
      const summaries = runs.map(({ config: _config, ...s }) => s);
      return { total: summaries.length, runs: summaries.slice(q.offset, q.offset + q.limit) };
    },
    getRun: (runId) => this.runsById.get(runId) ?? null,
    getMetricSeries: (q): MetricSeries | null => {
      if (!this.runsById.has(q.runId)) return null;
      const all = this.metrics.get(q.runId)?.get(q.key) ?? [];
      // plain stride thinning keeping the last point (the store does min/max buckets)
      const stride = Math.max(1, Math.ceil(all.length / q.maxPoints));
      const pts = all.filter((_, i) => i % stride === 0 || i === all.length - 1);
      return {
        runId: q.runId,
        key: q.key,
        steps: pts.map((p) => p.step),
        values: pts.map((p) => (Number.isFinite(p.value) ? p.value : null)),
        tokens: pts.map((p) => p.tokens),
        total: all.length,
      };
    },
    metricsSummary: (runId): MetricSummary[] | null => {
      if (!this.runsById.has(runId)) return null;
      const byKey = this.metrics.get(runId) ?? new Map<string, Point[]>();
      return [...byKey.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .filter(([, pts]) => pts.length > 0)
        .map(([key, pts]) => {
          const finite = pts.map((p) => p.value).filter(Number.isFinite);
          const last = pts[pts.length - 1]!.value;
          return {
            key,
            count: pts.length,
            firstStep: pts[0]!.step,
            lastStep: pts[pts.length - 1]!.step,
            last: Number.isFinite(last) ? last : null,
            min: finite.length ? Math.min(...finite) : null,
            max: finite.length ? Math.max(...finite) : null,
          };
        });
    },
    listCheckpoints: (runId) =>
      this.runsById.has(runId) ? this.checkpoints.filter((c) => c.runId === runId) : null,
    listEvaluations: (runId) =>
      this.runsById.has(runId) ? this.evaluations.filter((e) => e.runId === runId) : null,
  };

  private require(runId: number): RunDetail {
    const r = this.runsById.get(runId);
    if (!r) throw new Error(`run ${runId} does not exist`);
    return r;
  }
}
