export * from './types.js';
export {
  openDatabase,
  migrate,
  schemaVersion,
  integrityOk,
  isSqliteError,
  DEFAULT_BUSY_TIMEOUT_MS,
  type Db,
  type OpenDatabaseOptions,
} from './db.js';
export { MIGRATIONS, SCHEMA_VERSION, type Migration } from './migrations/index.js';
export { Store, isPidAlive, DEFAULT_STALE_AFTER_MS, type StoreOptions } from './store.js';
export { MetricWriter, type MetricWriterOptions, type MetricExtra } from './metric-writer.js';
export { MinMaxDownsampler, downsampleMinMax } from './downsample.js';
export { fileSha256, type FileDigest } from './hash.js';
export { normalizeRelativePath } from './paths.js';
export {
  openWorkspace,
  resolveInWorkspace,
  toWorkspacePath,
  defaultWorkspaceDir,
  DB_FILE,
  RUNS_DIR,
  type Workspace,
  type OpenWorkspaceOptions,
} from './workspace.js';
