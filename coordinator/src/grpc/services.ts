import { FedlhsError, checkWireString } from '@fedlhs/core';
import type { EnrolmentHandlers, FederationHandlers } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { BufferPool } from '../blobs/buffer-pool.js';
import { DownloadSlots } from '../downloads.js';
import type { Coordinator } from '../coordinator.js';
import { nodeCertificatesOf } from '../ca/node-certificates.js';
import { toWireStudy } from '../wire.js';
import { timed, type HandlerContext } from './context.js';
import { downloadHandler } from './download-handler.js';
import { releaseHandlers } from './release-handler.js';
import { authenticateCall, grpcCredentialThrottle } from './node-auth.js';
import { sessionHandler } from './session-handler.js';
import { toStatus } from './status.js';
import type { TransferOptions } from './transfer.js';
import { uploadHandler } from './upload-handler.js';
import { validateEnrolRequest, validateEvaluationReport, validateStatisticsReport } from './validate.js';

export type { TransferOptions } from './transfer.js';

/** Thin gRPC handlers for fedlhs.v1.Enrolment: decode, call the domain, encode. */
export function enrolmentHandlers(coordinator: Coordinator, logger: Logger): EnrolmentHandlers {
  const log = logger.child({ component: 'grpc-enrolment' });
  return {
    Enrol(call, cb) {
      const callback = timed(coordinator, 'Enrol', cb);
      const { joinToken, siteName, agent, certificateSigningRequest } = call.request;
      const certificates = nodeCertificatesOf(coordinator);
      // Unauthenticated: the strings are checked before the domain sees (or logs) any of them,
      // and wrong join tokens count against the caller's address like wrong credentials.
      grpcCredentialThrottle(coordinator, log)
        .guard(call.getPeer(), async () => {
          validateEnrolRequest(call.request);
          // Checked before the join token is spent: a bad request must not cost the clinic its token.
          certificates?.checkEnrolmentCsr(certificateSigningRequest);
          const r = await coordinator.enrol(joinToken, siteName, agent);
          const issued = certificates?.ca.issue(r.nodeId, certificateSigningRequest);
          if (issued !== undefined) log.info({ event: 'node.certificate_issued', nodeId: r.nodeId, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString() }, 'node certificate issued at enrolment');
          return { ...r, issued };
        })
        .then(
          (r) => callback(null, {
            nodeId: r.nodeId, nodeCredential: r.credential, siteName: r.siteName,
            releasePublicKey: coordinator.releaseKey.publicPem, releaseKeyFingerprint: coordinator.releaseKey.fingerprint,
            clientCertificate: r.issued?.certificatePem ?? '', clientCaCertificate: r.issued?.caCertificatePem ?? '', clientCertificateNotAfterUnixMs: r.issued?.notAfter ?? 0,
          }),
          (err: unknown) => callback(toStatus(err, log, 'Enrol')),
        );
    },
  };
}

/**
 * Thin gRPC handlers for fedlhs.v1.Federation: the streams in their own files (session,
 * download, upload handlers), the unary reports here. Each authenticates with node-auth.ts and
 * validates what the node sent with validate.ts before calling the domain.
 */
export function federationHandlers(coordinator: Coordinator, logger: Logger, transfer: TransferOptions = {}): FederationHandlers {
  const ctx: HandlerContext = { coordinator, log: logger.child({ component: 'grpc-federation' }), metrics: coordinator.metrics, transfer };
  const { log } = ctx;
  // One count of open downloads per node and in all: model and release files together.
  const downloadSlots = new DownloadSlots(coordinator.limits, (open) => ctx.metrics.downloadStreams.set(open));
  return {
    Session: sessionHandler(ctx),
    DownloadModel: downloadHandler(ctx, new BufferPool(), downloadSlots),
    UploadUpdate: uploadHandler(ctx),

    // Releases (issue 12): release-handler.ts.
    ...releaseHandlers(ctx, downloadSlots),

    // Secure aggregation stages (issue 14): the answer goes to the stage's phase (update-intake.ts).
    ReportStage(call, cb) {
      const callback = timed(coordinator, 'ReportStage', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          // The ids have the limits of every report's ids (core wire-limits); the body is the stage's to check.
          checkWireString('EvaluationReport.task_id', call.request.taskId, 'StageReport.task_id');
          checkWireString('EvaluationReport.study_id', call.request.studyId, 'StageReport.study_id');
          return coordinator.reportStage(node, call.request);
        })
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportStage')),
        );
    },

    // Node certificates (issue 15): ca/node-certificates.ts.
    RenewCertificate(call, cb) {
      const callback = timed(coordinator, 'RenewCertificate', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          const certificates = nodeCertificatesOf(coordinator);
          if (certificates === undefined) throw new FedlhsError('CERTIFICATES_NOT_ISSUED', "this coordinator does not issue node certificates (tls.clientCertificates is 'external')");
          return certificates.renew(call, node, call.request.certificateSigningRequest, log);
        })
        .then(
          (issued) => callback(null, { clientCertificate: issued.certificatePem, clientCaCertificate: issued.caCertificatePem, notAfterUnixMs: issued.notAfter }),
          (err: unknown) => callback(toStatus(err, log, 'RenewCertificate')),
        );
    },

    ListStudies(call, cb) {
      const callback = timed(coordinator, 'ListStudies', cb);
      authenticateCall(ctx, call)
        .then(() => coordinator.listStudies(call.request.includeEnded))
        .then(
          (studies) => callback(null, { studies: studies.map(toWireStudy) }),
          (err: unknown) => callback(toStatus(err, log, 'ListStudies')),
        );
    },

    ReportStatistics(call, cb) {
      const callback = timed(coordinator, 'ReportStatistics', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          validateStatisticsReport(call.request);
          return coordinator.reportStatistics(node, call.request);
        })
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportStatistics')),
        );
    },

    ReportEvaluation(call, cb) {
      const callback = timed(coordinator, 'ReportEvaluation', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          validateEvaluationReport(call.request);
          return coordinator.reportEvaluation(node, call.request);
        })
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportEvaluation')),
        );
    },
  };
}
