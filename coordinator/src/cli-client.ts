import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, errorFromBody } from '@fedlhs/core';

/** Where and how the CLI reaches a running coordinator's admin API. */
export interface AdminTarget {
  url: string;
  token: string;
}

export function resolveAdminTarget(options: { adminUrl?: string; adminToken?: string; dataDir?: string }, env: NodeJS.ProcessEnv): AdminTarget {
  const url = options.adminUrl ?? env.FEDLHS_ADMIN_URL ?? `http://127.0.0.1:${env.FEDLHS_ADMIN_PORT ?? '7480'}`;
  let token = options.adminToken ?? env.FEDLHS_ADMIN_TOKEN;
  if (token === undefined || token === '') {
    const dataDir = options.dataDir ?? env.FEDLHS_DATA_DIR ?? './.fedlhs/coordinator';
    const path = join(dataDir, 'admin-token');
    try {
      token = readFileSync(path, 'utf8').trim();
    } catch {
      throw new FedlhsError('CONFIG_INVALID', `no admin token: pass --admin-token, set FEDLHS_ADMIN_TOKEN, or run on the coordinator host where ${path} exists`, {
        details: { key: 'admin.token' },
      });
    }
  }
  try {
    new URL(url);
  } catch {
    throw new FedlhsError('CONFIG_INVALID', `--admin-url ${JSON.stringify(url)} is not a URL`, { details: { key: 'adminUrl' } });
  }
  return { url: url.replace(/\/$/, ''), token };
}

/**
 * Calls the admin API. Throws ADMIN_UNREACHABLE when it cannot be reached, and otherwise the
 * API's own error (its code and details), with a message "<HTTP status> <code>: <message>".
 */
export async function adminCall<T>(target: AdminTarget, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new FedlhsError('ADMIN_UNREACHABLE', `cannot reach the coordinator admin API at ${target.url}: ${(err as Error).message}`, { cause: err });
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { code?: unknown; message?: unknown } };
  if (!res.ok) {
    const code = typeof json.error?.code === 'string' ? json.error.code : '';
    throw errorFromBody(json.error ?? { message: res.statusText }, `${res.status} ${code}: `);
  }
  return json as T;
}
