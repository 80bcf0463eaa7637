import type pg from 'pg';

/** A named (server-side prepared, once per connection) statement. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/** A statement named `fedlhs_<name>`. */
export const stmt = (name: string, text: string): Statement => ({ name: `fedlhs_${name}`, text });

/** Runs a named statement on `client`. */
export function exec<R extends pg.QueryResultRow = Record<string, unknown>>(client: pg.ClientBase | pg.Pool, s: Statement, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  return client.query<R>({ name: s.name, text: s.text, values });
}
