import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { FedlhsError } from '@fedlhs/core';

/**
 * Channel options both ends set deliberately. Keepalive pings find dead peers behind NATs
 * and firewalls that drop idle flows silently; message limits stay at gRPC's default 4 MiB
 * because the protocol chunks every payload below it.
 */
export const KEEPALIVE_OPTIONS: ChannelOptions = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.max_pings_without_data': 0,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
};

/**
 * Server side: accept the agents' keepalive pings at the rate they send them, and bound what
 * one connection may hold before any credential is checked (issue 11): at most 64 concurrent
 * streams (an agent uses three: its session, a download, an upload) and 64 MB of HTTP/2
 * session memory (grpc-js leaves both unbounded by default).
 */
export const SERVER_OPTIONS: ChannelOptions = {
  ...KEEPALIVE_OPTIONS,
  'grpc.max_concurrent_streams': 64,
  'grpc-node.max_session_memory': 64,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  'grpc.http2.min_time_between_pings_ms': 10_000,
};

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FedlhsError('CONFIG_INVALID', `${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, details: { key: what } });
  }
}

export interface ServerTlsOptions {
  mode: 'tls' | 'plaintext';
  cert: string;
  key: string;
  clientCa: string;
}

/** Server credentials from PEM files; with a client CA, client certificates are required. */
export function serverCredentials(tls: ServerTlsOptions): grpc.ServerCredentials {
  if (tls.mode === 'plaintext') return grpc.ServerCredentials.createInsecure();
  const ca = tls.clientCa === '' ? null : readPem(tls.clientCa, 'tls.clientCa');
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readPem(tls.cert, 'tls.cert'), private_key: readPem(tls.key, 'tls.key') }], ca !== null);
}

export interface ClientTlsOptions {
  mode: 'tls' | 'plaintext';
  /** PEM CA bundle to trust; empty: the system's roots. */
  ca: string;
  /** Optional client certificate and key for mutual TLS. */
  cert: string;
  key: string;
  /** Expected server name if it differs from the address' host. */
  serverName: string;
  /** Called with the coordinator certificate's SHA-256 fingerprint once its name has been verified. */
  onServerCertificate?: ((certificate: { sha256: string; names: string[] }) => void) | undefined;
}

/** The DNS names and IP addresses a certificate is for, as "localhost", "127.0.0.1". */
function certificateNames(peer: PeerCertificate): string[] {
  const alt = (peer.subjectaltname ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address):/, '')).filter((s) => s !== '');
  const cn = peer.subject?.CN;
  return alt.length > 0 ? alt : typeof cn === 'string' ? [cn] : [];
}

/** Channel credentials and the extra options they need (server-name override). */
export function channelCredentials(tls: ClientTlsOptions): { credentials: grpc.ChannelCredentials; options: ChannelOptions } {
  if (tls.mode === 'plaintext') return { credentials: grpc.credentials.createInsecure(), options: {} };
  const credentials = grpc.credentials.createSsl(
    tls.ca === '' ? null : readPem(tls.ca, 'tls.ca'),
    tls.key === '' ? null : readPem(tls.key, 'tls.key'),
    tls.cert === '' ? null : readPem(tls.cert, 'tls.cert'),
    {
      // Node's own name check, with a message that says which name to use when it fails. A plain
      // Error: this is tls.checkServerIdentity's contract, and grpc-js reports only its message
      // (in an UNAVAILABLE status), so a code would not survive.
      checkServerIdentity: (host, peer) => {
        const err = checkServerIdentity(host, peer);
        if (err !== undefined) {
          const names = certificateNames(peer);
          return new Error(`the coordinator's certificate is not for ${JSON.stringify(host)} but for ${names.map((n) => JSON.stringify(n)).join(', ') || 'no name'}: dial one of those names, or set tls.serverName to one of them`);
        }
        tls.onServerCertificate?.({ sha256: peer.fingerprint256, names: certificateNames(peer) });
        return undefined;
      },
    },
  );
  return { credentials, options: tls.serverName === '' ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } };
}
