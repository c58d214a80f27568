/**
 * What the job layer needs from the workspace store, as interfaces. The API service reads
 * through `RunsRepository` (host process); jobs write through `RunRecorder` (worker
 * process). `store-adapter.ts` implements both on the SQLite store; tests use
 * `memory-workspace.ts`. Values are the contract's types: adapters do the row mapping.
 */
import type {
  BackendInfo,
  Checkpoint,
  Evaluation,
  JobEvent,
  MetricSeries,
  MetricSeriesQuery,
  MetricSummary,
  RunDetail,
  RunListQuery,
  RunListResponse,
  RunStatus,
} from '../contract/index.js';

import type { Store } from '../store/index.js';

export type Awaitable<T> = T | Promise<T>;

export interface RunsRepository {
  schemaVersion(): number | null;
  listRuns(query: RunListQuery): Awaitable<RunListResponse>;
  /** null when no such run. */
  getRun(runId: number): Awaitable<RunDetail | null>;
  /** null when no such run; an empty series when the run has no points for `key`. */
  getMetricSeries(query: MetricSeriesQuery): Awaitable<MetricSeries | null>;
  metricsSummary(runId: number): Awaitable<MetricSummary[] | null>;
  listCheckpoints(runId: number): Awaitable<Checkpoint[] | null>;
  listEvaluations(runId: number): Awaitable<Evaluation[] | null>;
}

/** The SQLite store answers synchronously (better-sqlite3). */
export interface SyncRunsRepository extends RunsRepository {
  listRuns(query: RunListQuery): RunListResponse;
  getRun(runId: number): RunDetail | null;
  getMetricSeries(query: MetricSeriesQuery): MetricSeries | null;
  metricsSummary(runId: number): MetricSummary[] | null;
  listCheckpoints(runId: number): Checkpoint[] | null;
  listEvaluations(runId: number): Evaluation[] | null;
}

export interface NewRun {
  kind: string;
  config: Record<string, unknown>;
  experimentId?: number | null;
  parentRunId?: number | null;
  variant?: string | null;
  seed?: number | null;
}

export interface MetricSink {
  /** Buffered; `flush` (or `close`) makes the points visible to readers. */
  write(key: string, step: number, value: number, tokens?: number | null): void;
  flush(): void;
  close(): void;
}

export type FinalRunStatus = Extract<RunStatus, 'done' | 'failed' | 'cancelled'>;

export interface RunRecorder {
  createRun(run: NewRun): number;
  startRun(runId: number, info: { backend?: string | null; pid?: number }): void;
  finishRun(runId: number, outcome: { status: FinalRunStatus; error?: string | null }): void;
  metricSink(runId: number): MetricSink;
  /**
   * Deletes the run (and its empty folder) when it recorded nothing — no metric, checkpoint,
   * evaluation or expert — and returns true; otherwise leaves it and returns false.
   */
  discardIfEmpty?(runId: number): boolean;
}

/** An open workspace: one directory, one database. */
export interface WorkspaceHandle {
  readonly dir: string;
  /**
   * The workspace database itself, for jobs that record more than runs and metrics
   * (checkpoints, evaluations, experts). Null for in-memory test workspaces.
   */
  readonly store: Store | null;
  readonly runs: RunsRepository;
  readonly recorder: RunRecorder;
  close(): void;
}

export interface SyncWorkspaceHandle extends WorkspaceHandle {
  readonly runs: SyncRunsRepository;
}

export type WorkspaceOpener = (dir: string, opts: { create: boolean }) => WorkspaceHandle;

/** The job side as the API service sees it (the worker supervisor implements it). */
export interface JobsPort {
  /** Queues a job of a registered kind with an already validated config; returns its id. */
  startJob(kind: string, config: Record<string, unknown>): string;
  /** False when the job is unknown to the worker or already ended. */
  cancelJob(jobId: string): boolean;
  onEvent(listener: (event: JobEvent) => void): () => void;
  queryBackends(): Promise<BackendInfo[]>;
}
