import type { CoordinatorStore } from '../../store.js';

/** A column of the logical schema: what both stores must agree on (design §2.4 parity). */
export interface LogicalColumn {
  name: string;
  /** 'text' | 'integer' | 'real' | 'boolean', normalised from the backend's type name. */
  type: string;
  notNull: boolean;
}

/** A database's tables (name → columns, by name) and indexes (name → normalised definition). */
export interface LogicalSchema {
  tables: Record<string, LogicalColumn[]>;
  indexes: Record<string, string>;
}

/** A fresh store and how to throw it (and its database) away. */
export interface OpenedStore {
  store: CoordinatorStore;
  cleanup(): Promise<void>;
  /** Another store on the same database (its own connection); the caller closes it. */
  reopen(): Promise<CoordinatorStore>;
  /** The database's logical schema, for the migrations contract. */
  schema(): Promise<LogicalSchema>;
}

/**
 * One store implementation under the contract suite. Kinds are appended to `storeKinds`
 * (store-kinds.ts; the PostgreSQL entry lives beside its store).
 */
export interface StoreKind {
  kind: string;
  open(): Promise<OpenedStore>;
  /**
   * A store opened on a database made by the previous schema version (SQLite SCHEMA_VERSION - 1), holding the
   * rows of `LEGACY_ROWS` (store-kinds.ts), and upgraded by the open. Absent for stores without a history.
   */
  openUpgraded?(): Promise<OpenedStore>;
  /**
   * Opens a store on a database whose schema version is newer than this code knows: must reject
   * with STORE_VERSION_TOO_NEW (and cleans up after itself).
   */
  openTooNew?(): Promise<void>;
}
