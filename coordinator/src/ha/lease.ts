import pg from 'pg';
import { storeTypes } from '../store/postgres/connection.js';

/**
 * The leadership lease of active/standby coordinators (issue 15) on the PostgreSQL store: one row
 * of table `leadership` (PostgreSQL migration 8) holding the holder's id and advertised address,
 * a fencing token and an expiry. Expiry is by the DATABASE clock (`now()`), so coordinators on
 * machines whose clocks disagree still agree on who holds it. Every takeover adds one to the
 * fence; every write unit of an HA coordinator checks the fence in its own transaction
 * (store/postgres/postgres-store.ts), so a coordinator that lost the lease cannot write.
 *
 * Why a lease row rather than an advisory lock: a session advisory lock lives as long as one
 * connection, and an active cut off from the database keeps it until the server notices the dead
 * TCP connection (minutes, or never behind a proxy that keeps both sides open); a row with an
 * expiry by the database clock hands over after a bounded time whatever the network does, and
 * the same row carries the fence every write checks.
 *
 * The client has its own connection (not the store's pool, which a slow batch may fill), with a
 * statement and lock timeout so a check never waits longer than a third of the lease: an
 * unanswered query is an error, and the connection is then dropped and opened again next time.
 */

/** What the lease row says now. */
export interface LeaseView {
  holder: string | null;
  /** The holder's advertised gRPC address ('' when it advertises none). */
  address: string;
  fence: number;
  /** Milliseconds until it expires by the database clock (negative: expired). */
  expiresInMs: number;
}

export interface LeaseClientOptions {
  /** Where PostgreSQL is: the store's URL or client config. */
  connection: string | pg.ClientConfig;
  /** This process's holder id: unique per process start (a restart never renews an old lease). */
  holder: string;
  /** The address agents reach this coordinator at (host:port), named to them by standbys; may be ''. */
  address: string;
  leaseMs: number;
}

// The takeover, in one transaction: first the row FOR UPDATE, which conflicts with the FOR KEY
// SHARE every write batch holds on it while it runs, so a takeover waits for (or, past
// lock_timeout, retries after) a batch that passed the fence check; the renewal's plain UPDATE
// does not conflict with FOR KEY SHARE, so an active's own slow batches never block its renewal
// (review of issue 15: an active whose batches were slow demoted itself). An UPDATE alone would
// take only FOR NO KEY UPDATE, which does not wait for FOR KEY SHARE.
const LOCK = { name: 'fedlhs_ha_lock', text: `SELECT holder, expires_at <= now() AS free FROM leadership WHERE id = 1 FOR UPDATE` };
const ACQUIRE = {
  name: 'fedlhs_ha_acquire',
  text: `UPDATE leadership SET holder = $1, address = $2, fence = fence + 1, expires_at = now() + $3 * interval '1 millisecond', acquired_at = clock_timestamp()
    WHERE id = 1 AND expires_at <= now()
    RETURNING fence`,
};
// Renewal needs the same holder AND fence: a lease someone else took (fence moved) is never
// renewed, even if that one has since let it lapse.
const RENEW = {
  name: 'fedlhs_ha_renew',
  text: `UPDATE leadership SET expires_at = now() + $3 * interval '1 millisecond' WHERE id = 1 AND holder = $1 AND fence = $2 RETURNING fence`,
};
const RELEASE = {
  name: 'fedlhs_ha_release',
  text: `UPDATE leadership SET expires_at = now() WHERE id = 1 AND holder = $1 AND fence = $2 AND expires_at > now()`,
};
const READ = {
  name: 'fedlhs_ha_read',
  text: `SELECT holder, address, fence, CASE WHEN isfinite(expires_at) THEN (extract(epoch FROM (expires_at - now())) * 1000)::float8 END AS expires_in_ms FROM leadership WHERE id = 1`,
};

/** SQL access to the lease row on a connection of its own. */
export class LeaseClient {
  private client: pg.Client | undefined;
  private readonly config: pg.ClientConfig;

  constructor(private readonly opts: LeaseClientOptions) {
    const base: pg.ClientConfig = typeof opts.connection === 'string' ? { connectionString: opts.connection } : { ...opts.connection };
    const third = Math.max(200, Math.floor(opts.leaseMs / 3));
    this.config = {
      ...base,
      types: storeTypes,
      application_name: base.application_name ?? 'fedlhs-coordinator-lease',
      connectionTimeoutMillis: third,
      statement_timeout: third,
      // Client side, a little later than the server's: a partitioned network answers nothing at all.
      query_timeout: third + 200,
      // A takeover must not queue behind a write batch of a cut-off active holding the row FOR
      // KEY SHARE: it fails fast and is tried again at the next check.
      lock_timeout: Math.floor(third / 2),
    };
  }

  get holder(): string {
    return this.opts.holder;
  }

  private async run<R extends pg.QueryResultRow>(q: { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<R>> {
    let client = this.client;
    if (client === undefined) {
      client = new pg.Client(this.config);
      // An idle connection that dies emits 'error': dropped here, reopened at the next call.
      client.on('error', () => this.drop(client!));
      try {
        await client.connect();
      } catch (err) {
        void client.end().catch(() => undefined);
        throw err;
      }
      this.client = client;
    }
    try {
      return await client.query<R>({ ...q, values });
    } catch (err) {
      // A timed-out query leaves the connection in an unknown state: never reuse it.
      this.drop(client);
      throw err;
    }
  }

  private drop(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
  }

  /** Takes the lease if it is free or expired: the new fence and the previous holder, else undefined. */
  async tryAcquire(): Promise<{ fence: number; previous: string | null } | undefined> {
    await this.run({ name: '', text: 'BEGIN' }, []);
    try {
      const lock = (await this.run<{ holder: string | null; free: boolean }>(LOCK, [])).rows[0];
      if (lock === undefined) throw new Error('the leadership row is missing (PostgreSQL migration 8 creates it)');
      const row = lock.free ? (await this.run<{ fence: number }>(ACQUIRE, [this.opts.holder, this.opts.address, this.opts.leaseMs])).rows[0] : undefined;
      await this.run({ name: '', text: 'COMMIT' }, []);
      return row === undefined ? undefined : { fence: row.fence, previous: lock.holder };
    } catch (err) {
      // run() dropped a connection whose query failed; one that is still ours is rolled back.
      await this.client?.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Extends the lease held with `fence` by leaseMs from the database's now; false if it is no longer ours. */
  async renew(fence: number): Promise<boolean> {
    return (await this.run(RENEW, [this.opts.holder, fence, this.opts.leaseMs])).rowCount === 1;
  }

  /** Lets the lease held with `fence` expire now (a clean shutdown), so a standby takes over at its next check. */
  async release(fence: number): Promise<boolean> {
    return (await this.run(RELEASE, [this.opts.holder, fence])).rowCount === 1;
  }

  /** The lease row as it is now. */
  async read(): Promise<LeaseView> {
    const row = (await this.run<{ holder: string | null; address: string; fence: number; expires_in_ms: number | null }>(READ, [])).rows[0];
    if (row === undefined) throw new Error('the leadership row is missing (PostgreSQL migration 8 creates it)');
    // '-infinity' (never held) has no finite difference.
    const expiresInMs = row.expires_in_ms === null || !Number.isFinite(row.expires_in_ms) ? -Infinity : row.expires_in_ms;
    return { holder: row.holder, address: row.address, fence: row.fence, expiresInMs };
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
