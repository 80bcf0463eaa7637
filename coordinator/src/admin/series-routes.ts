import type { IncomingMessage } from 'node:http';
import { FedlhsError } from '@fedlhs/core';
import { checkStudyName, checkVersion } from '../releases/registry.js';
import type { SeriesActions } from '../series/types.js';
import type { Operator } from './auth.js';
import { promotionView, seriesDetail, seriesList, seriesRecordJson, seriesRunRecordJson, type SeriesViewContext } from './series-views.js';

/**
 * The admin API's study series routes (issue 13, Flow 7), mounted by http.ts: the list and the
 * detail for viewers; create, update, pause, resume, run-now, promote and rollback for admins
 * (http.ts checks the role). Every action is audited and announced ('change' {kind: 'series'})
 * by SeriesActions itself; this layer only validates the request and shapes the answer.
 */

/** A route as http.ts runs it. */
export interface SeriesRoute {
  method: 'GET' | 'POST' | 'PUT';
  pattern: RegExp;
  role: 'viewer' | 'admin';
  handle: (m: RegExpExecArray, req: IncomingMessage, operator: Operator | undefined) => Promise<[number, unknown]>;
}

export interface SeriesRouteDeps {
  /** The request body as a JSON object (http.ts readJson: size limit, 4xx naming what is wrong). */
  readJson: (req: IncomingMessage) => Promise<Record<string, unknown>>;
  views: SeriesViewContext;
  /** The series service, or a throw saying why it is not available. */
  actions: () => SeriesActions;
}

/** The series routes, in matching order. */
export function seriesRoutes(d: SeriesRouteDeps): SeriesRoute[] {
  return [
    { method: 'GET', pattern: /^\/api\/v1\/series$/, role: 'viewer', handle: async () => [200, await seriesList(d.views)] },
    {
      // Body: the template itself (what `series create <template.json>` reads).
      method: 'POST', pattern: /^\/api\/v1\/series$/, role: 'admin',
      handle: async (_m, req, operator) => [201, seriesRecordJson(await d.actions().create(await d.readJson(req), operator!.name))],
    },
    { method: 'GET', pattern: /^\/api\/v1\/series\/([^/]+)$/, role: 'viewer', handle: async (m) => [200, await seriesDetail(d.views, checkStudyName(m[1]))] },
    {
      // Body: the new template; runs already started keep theirs, clinics approve the new hash again.
      method: 'PUT', pattern: /^\/api\/v1\/series\/([^/]+)$/, role: 'admin',
      handle: async (m, req, operator) => {
        const name = checkStudyName(m[1]);
        const template = await d.readJson(req);
        if (template.name !== undefined && template.name !== name) {
          throw new FedlhsError('INVALID_ARGUMENT', `name: the template names series ${JSON.stringify(template.name).slice(0, 80)}, the request series ${name} (a series cannot be renamed)`, { details: { field: 'name' } });
        }
        return [200, seriesRecordJson(await d.actions().update(name, template, operator!.name))];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/series\/([^/]+)\/(pause|resume)$/, role: 'admin',
      handle: async (m, _r, operator) => [200, seriesRecordJson(await d.actions().setState(checkStudyName(m[1]), m[2] === 'pause' ? 'paused' : 'active', operator!.name))],
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/series\/([^/]+)\/run-now$/, role: 'admin',
      handle: async (m, _r, operator) => [201, seriesRunRecordJson(await d.actions().runNow(checkStudyName(m[1]), operator!.name))],
    },
    {
      // Body {"version": N}: a release of the series becomes its champion.
      method: 'POST', pattern: /^\/api\/v1\/series\/([^/]+)\/promote$/, role: 'admin',
      handle: async (m, req, operator) => {
        const name = checkStudyName(m[1]);
        const body = await d.readJson(req);
        if (body.version === undefined) throw new FedlhsError('INVALID_ARGUMENT', 'version: required (the release version to make champion)', { details: { field: 'version' } });
        if (typeof body.version !== 'number') throw new FedlhsError('INVALID_ARGUMENT', `version: a number is required, got ${JSON.stringify(body.version).slice(0, 80)}`, { details: { field: 'version' } });
        return [200, promotionView(await d.actions().promote(name, checkVersion(body.version), operator!.name))];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/series\/([^/]+)\/rollback$/, role: 'admin',
      handle: async (m, _r, operator) => [200, promotionView(await d.actions().rollback(checkStudyName(m[1]), operator!.name))],
    },
  ];
}
