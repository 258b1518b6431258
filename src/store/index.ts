export { createSqliteStore, type SqliteStoreOptions, type StoreStats } from './sqlite.js';
export type { RunQuery, RunRecord, Store, StoredRun, StoreHealth, Trigger } from './types.js';
