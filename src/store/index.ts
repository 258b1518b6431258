export { createHousekeeping, type Housekeeping, type HousekeepingOptions } from './housekeeping.js';
export { createPostgresStore, type PostgresStoreOptions } from './postgres/store.js';
export { createSelfBackup, type SelfBackup } from './self-backup.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { DatabaseError, ownerFix } from './sqlite-open.js';
export type {
  AlertStore,
  AuditEntry,
  AuditLog,
  EscalationRow,
  FeedCursor,
  FeedPage,
  HeldPages,
  Incident,
  IncidentChange,
  IncidentEvent,
  IncidentState,
  LeaseState,
  NewNotification,
  OncallOverride,
  OutboxClaim,
  OutboxItem,
  OutboxState,
  RollupBucket,
  RollupPeriod,
  RollupSummary,
  Rollups,
  RunQuery,
  RunRecord,
  Silence,
  Store,
  StoredRun,
  StoreHealth,
  StoreStats,
  Trigger,
  ValueAggregate,
} from './types.js';
