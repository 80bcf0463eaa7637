/**
 * The clinic's local scoring service (issue 12), off unless config scoring.listen is set:
 * CDS Hooks 2.0 (`GET /cds-services` discovery, `POST /cds-services/fedlhs-<study>` for
 * patient-view with FHIR prefetch) and a plain JSON endpoint (`POST /score`). It scores with
 * the same pipeline as `fedlhs-agent score` without --index-date (each patient's latest
 * qualifying encounter), so both say the same risk for the same patient. It answers a clear
 * 4xx rather than a guess, logs no patient id, and sends nothing anywhere.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isFedlhsError } from '@fedlhs/core';
import { neededKinds, openFhirResources } from '@fedlhs/ehr';
import { releaseName } from './outputs.js';
import { riskText } from './pipeline.js';
import { ServiceReleases, releaseErrorStatus } from './service-releases.js';
import { HttpError, cdsCard, featuresFromJson, patientResources, prefetchFor, prefetchResources, scorePatient, type Json, type PatientScore } from './cds-request.js';

/** The logger the service writes to (pino's shape). */
export interface ScoringLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ScoringServiceOptions {
  /** host:port (IPv6 as [addr]:port); port 0 picks a free one. */
  listen: string;
  stateDir: string;
  /** The pinned release key (PEM) every deployed release is verified against. */
  pinnedPem: string;
  log: ScoringLog;
  /** Largest request body (default 1 MiB). */
  maxBodyBytes?: number;
}

export interface ScoringService {
  /** The bound address (the real port when 0 was asked for). */
  readonly host: string;
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:8091 */
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;
/** Past this, the rest of an oversized body is not even read: the connection is cut. */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/** Parses scoring.listen: INVALID listen values throw with the value named. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[2]);
  if (m === null || port > 65535) throw new Error(`scoring.listen: must be host:port (e.g. 127.0.0.1:8091): value was ${JSON.stringify(listen)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** Reads a body up to `limit` bytes; a larger one is drained and answered 413. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  let size = 0;
  const chunks: Buffer[] = [];
  let over = Number.isFinite(declared) && declared > limit;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) over = true;
    if (size > DRAIN_LIMIT) {
      req.destroy();
      break;
    }
    if (!over) chunks.push(chunk);
  }
  if (over) throw new HttpError(413, `request body over ${limit} bytes`);
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

/** The service id of a request path, percent-decoded; 400 for an encoding that is not one (decodeURIComponent throws URIError). */
function decodeServiceId(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new HttpError(400, 'the service id in the path is not valid percent-encoding (UTF-8)');
  }
}

/** Starts the scoring service; resolves once it listens. */
export async function startScoringService(options: ScoringServiceOptions): Promise<ScoringService> {
  const { host, port } = parseListen(options.listen);
  const { log } = options;
  const limit = options.maxBodyBytes ?? MAX_BODY;
  const releases = new ServiceReleases(options.stateDir, options.pinnedPem);

  /** Discovery: one patient-view service per deployed cohort/v1 release that verifies. */
  function discovery(): Json {
    const services: Json[] = [];
    for (const name of releases.deployedNames()) {
      try {
        const release = releases.load(name);
        if (release.descriptor.features.featureSpec !== 'cohort/v1') continue;
        const card = release.descriptor.modelCard;
        const prefetch = prefetchFor(neededKinds(release.manifest.data.cohort!));
        services.push({
          hook: 'patient-view',
          id: `fedlhs-${release.studyName}`,
          title: `${release.studyName}: risk of ${card.outcome}`.slice(0, 200),
          description: `${releaseName(release)}. ${card.intendedUse} Scored at the patient's latest qualifying encounter from the prefetched patient, observations, conditions${'medications' in prefetch ? ', medication requests' : ''} and encounters.`,
          prefetch,
        });
      } catch (err) {
        log.error({ event: 'scoring.release_refused', study: name, err }, `deployed release of ${name} not offered: ${(err as Error).message}`);
      }
    }
    return { services };
  }

  async function route(req: IncomingMessage): Promise<{ status: number; body: Json }> {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    if (path === '/cds-services') {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET /cds-services');
      return { status: 200, body: discovery() };
    }
    const service = /^\/cds-services\/([^/]+)$/.exec(path);
    if (service !== null || path === '/score') {
      if (req.method !== 'POST') throw new HttpError(405, `use POST ${path}`);
    } else {
      throw new HttpError(404, `no such endpoint: ${path} (GET /cds-services, POST /cds-services/{id}, POST /score)`);
    }
    const body = parseJson(await readBody(req, limit));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
    const request = body as Json;
    if (service !== null) return hookCall(decodeServiceId(service[1]!), request);
    return plainScore(request);
  }

  async function hookCall(id: string, request: Json): Promise<{ status: number; body: Json }> {
    const study = /^fedlhs-(.+)$/.exec(id)?.[1];
    const names = releases.deployedNames();
    if (study === undefined || !names.includes(study)) throw new HttpError(404, `no CDS service ${JSON.stringify(id)} here (services: ${names.map((n) => `fedlhs-${n}`).join(', ') || 'none deployed'})`);
    const release = loadRelease(study);
    if (release.descriptor.features.featureSpec !== 'cohort/v1') throw new HttpError(404, `no CDS service ${JSON.stringify(id)}: ${study} is a flat-table release (use POST /score)`);
    const { patientId, resources, present } = prefetchResources(request, neededKinds(release.manifest.data.cohort!));
    const source = openFhirResources(resources, { present, label: 'prefetch' });
    const score = await releases.withScorer(release, (scorer) => scorePatient(release, scorer, source));
    if (score.key !== patientId) throw new HttpError(400, 'the prefetched patient is not context.patientId');
    return { status: 200, body: { cards: [cdsCard(release, score)] } };
  }

  async function plainScore(request: Json): Promise<{ status: number; body: Json }> {
    if (request.study !== undefined && typeof request.study !== 'string') throw new HttpError(400, 'study must be a string (a deployed study name)');
    const hasFeatures = request.features !== undefined;
    const hasPatient = request.patient !== undefined;
    if (hasFeatures === hasPatient) throw new HttpError(400, 'send either features ({name: number | null}) or patient (a FHIR Bundle), not both or neither');
    const release = loadRelease(request.study as string | undefined);
    const score = await releases.withScorer(release, async (scorer): Promise<PatientScore> => {
      if (hasFeatures) {
        const features = featuresFromJson(release, request.features);
        const [s] = await scorer.score(features);
        return { ...s!, imputed: features.imputed };
      }
      if (release.descriptor.features.featureSpec !== 'cohort/v1') throw new HttpError(400, `${release.studyName} is a flat-table release: send features, not a patient`);
      return scorePatient(release, scorer, openFhirResources(patientResources(request.patient), { present: ['Patient', 'Encounter', 'Condition', 'Observation', 'MedicationRequest'], label: 'in the bundle' }));
    });
    return {
      status: 200,
      body: {
        risk: Number(riskText(score.risk)), band: score.band, study: release.studyName, version: release.version,
        ...(score.indexDay === undefined ? {} : { indexDate: new Date(score.indexDay * 86_400_000).toISOString().slice(0, 10) }),
        // The features the model had no usable value for (null, out of the cohort's range, or not in the record).
        imputed: score.imputed,
      },
    };
  }

  function loadRelease(study: string | undefined): ReturnType<ServiceReleases['load']> {
    try {
      return releases.load(study);
    } catch (err) {
      const status = releaseErrorStatus(err);
      if (status === 500) log.error({ event: 'scoring.release_refused', study, err }, (err as Error).message);
      throw new HttpError(status === 500 ? 503 : status, (err as Error).message);
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const send = (status: number, body: Json): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
      // Method, endpoint and outcome only: never a body, a patient id or a query string.
      const endpoint = (req.url ?? '/').replace(/\?.*$/, '');
      log.info({ event: 'scoring.request', method: req.method, endpoint, status, ms: Number((process.hrtime.bigint() - started) / 1_000_000n) }, `${req.method} ${endpoint} ${status}`);
    };
    route(req).then(
      (r) => send(r.status, r.body),
      (err: unknown) => {
        if (err instanceof HttpError) return send(err.status, { error: err.message });
        if (isFedlhsError(err, 'INVALID_ARGUMENT')) return send(400, { error: err.message });
        log.error({ event: 'scoring.failed', err }, 'scoring request failed');
        send(500, { error: `internal error: ${(err as Error).message}` });
      },
    );
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ event: 'scoring.listening', url }, `scoring service (CDS Hooks, JSON) listening on ${url}`);
  if (!isLoopback(address.address)) {
    log.warn({ event: 'scoring.exposed', url }, `the scoring service listens on ${url}, not loopback: anyone who can reach it can ask for scores; keep it inside the clinic's network`);
  }
  return {
    host: address.address,
    port: address.port,
    url,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await releases.close();
    },
  };
}
