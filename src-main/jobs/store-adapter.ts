/**
 * The job layer's ports (ports.ts) on the workspace store (src-main/store): row types to
 * contract types, NaN to null, the contract's richer run filter on top of `listRuns`.
 */
import { rmdirSync } from 'node:fs';
import path from 'node:path';
import {
  openWorkspace,
  type Checkpoint as StoreCheckpoint,
  type Evaluation as StoreEvaluation,
  type JsonObject as StoreJsonObject,
  type Run,
  type RunKind as StoreRunKind,
  type Store,
} from '../store/index.js';
import type {
  Checkpoint,
  Evaluation,
  MetricSeries,
  MetricSummary,
  RunDetail,
  RunListResponse,
  RunSummary,
} from '../contract/index.js';
import type { MetricSink, RunRecorder, SyncRunsRepository, SyncWorkspaceHandle } from './ports.js';

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function toRunSummary(r: Run): RunSummary {
  return {
    id: r.id,
    experimentId: r.experimentId,
    parentRunId: r.parentRunId,
    kind: r.kind,
    variant: r.variant,
    seed: r.seed,
    status: r.status,
    backend: r.backend,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    wallSeconds: r.wallSeconds,
    error: r.error,
  };
}

function toRunDetail(r: Run): RunDetail {
  return { ...toRunSummary(r), config: r.config };
}

function toCheckpoint(c: StoreCheckpoint): Checkpoint {
  return {
    id: c.id,
    runId: c.runId,
    step: c.step,
    epoch: c.epoch,
    path: c.path,
    sha256: c.sha256,
    bytes: c.bytes,
    tag: c.tag,
    createdAt: c.createdAt,
  };
}

function toEvaluation(e: StoreEvaluation): Evaluation {
  return { ...e };
}

export function storeRunsRepository(db: Store): SyncRunsRepository {
  const exists = (runId: number): boolean => db.getRun(runId) !== undefined;
  return {
    schemaVersion: () => db.db.pragma('user_version', { simple: true }) as number,
    listRuns(q): RunListResponse {
      let runs = db.listRuns({
        experimentId: q.experimentId,
        status: q.statuses,
        order: 'desc',
      });
      if (q.kinds && q.kinds.length > 0) {
        const kinds = new Set<string>(q.kinds);
        runs = runs.filter((r) => kinds.has(r.kind));
      }
      const needle = q.search?.trim().toLowerCase();
      if (needle) {
        runs = runs.filter(
          (r) =>
            r.kind.includes(needle) ||
            (r.variant ?? '').toLowerCase().includes(needle) ||
            String(r.id) === needle.replace(/^#/, ''),
        );
      }
      return { total: runs.length, runs: runs.slice(q.offset, q.offset + q.limit).map(toRunSummary) };
    },
    getRun(runId) {
      const r = db.getRun(runId);
      return r ? toRunDetail(r) : null;
    },
    getMetricSeries(q): MetricSeries | null {
      if (!exists(q.runId)) return null;
      const s = db.getMetricSeries(q.runId, q.key, { maxPoints: Math.max(4, q.maxPoints) });
      return {
        runId: q.runId,
        key: q.key,
        steps: s.points.map((p) => p.step),
        values: s.points.map((p) => finite(p.value)),
        tokens: s.points.map((p) => p.tokens),
        total: s.total,
      };
    },
    metricsSummary(runId): MetricSummary[] | null {
      if (!exists(runId)) return null;
      return db.getMetricSummary(runId).map((m) => ({
        key: m.key,
        count: m.count,
        firstStep: m.firstStep,
        lastStep: m.lastStep,
        last: finite(m.last),
        min: finite(m.min),
        max: finite(m.max),
      }));
    },
    listCheckpoints(runId) {
      return exists(runId) ? db.listCheckpoints(runId).map(toCheckpoint) : null;
    },
    listEvaluations(runId) {
      return exists(runId) ? db.listEvaluations(runId).map(toEvaluation) : null;
    },
  };
}

export function storeRunRecorder(db: Store, wsDir?: string): RunRecorder {
  return {
    discardIfEmpty: (runId) => {
      if (!db.runIsEmpty(runId)) return false;
      if (wsDir !== undefined) {
        const dir = path.join(wsDir, 'runs', String(runId));
        try {
          rmdirSync(dir); // only when empty: files a job wrote are never removed here
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
        }
      }
      return db.deleteRun(runId);
    },
    createRun: (run) =>
      db.createRun({
        // the store checks the kind against its vocabulary (RUN_KINDS)
        kind: run.kind as StoreRunKind,
        config: run.config as StoreJsonObject,
        experimentId: run.experimentId ?? null,
        parentRunId: run.parentRunId ?? null,
        variant: run.variant ?? null,
        seed: run.seed ?? null,
      }).id,
    startRun: (runId, info) => {
      db.startRun(runId, {
        backend: info.backend ?? 'none',
        ...(info.pid !== undefined ? { pid: info.pid } : {}),
      });
    },
    finishRun: (runId, outcome) => {
      db.finishRun(runId, outcome.status, outcome.error ?? null);
    },
    metricSink(runId): MetricSink {
      const w = db.metricWriter(runId);
      return {
        write: (key, step, value, tokens) => w.log(step, key, value, { tokens: tokens ?? null }),
        flush: () => void w.flush(),
        close: () => w.close(),
      };
    },
  };
}

export function openWorkspaceHandle(dir: string, opts: { create: boolean }): SyncWorkspaceHandle {
  const ws = openWorkspace(dir, { create: opts.create });
  return {
    dir: ws.dir,
    store: ws.db,
    runs: storeRunsRepository(ws.db),
    recorder: storeRunRecorder(ws.db, ws.dir),
    close: () => ws.close(),
  };
}
