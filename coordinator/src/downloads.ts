import { FedlhsError, bundleLength } from '@fedlhs/core';
import type { DownloadModelRequest__Output, TensorBundleHeader } from '@fedlhs/proto';
import type { CheckpointStore } from './checkpoints.js';
import type { Studies } from './studies.js';
import type { CoordinatorStore, NodeRecord } from './store.js';
import { ownTask } from './update-intake.js';

/** What model downloads need from the coordinator that builds them. */
export interface DownloadsOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  /** Chunk size announced in every download header. */
  chunkBytes: number;
  studies: Pick<Studies, 'runner' | 'openRunner'>;
}

/**
 * Model downloads: which checkpoint a node may read (its task's model, or a committed round's)
 * and the header that describes it. The transport streams the file itself.
 */
export class Downloads {
  private readonly store: CoordinatorStore;
  private readonly checkpoints: CheckpointStore;
  private readonly chunkBytes: number;
  private readonly studies: Pick<Studies, 'runner' | 'openRunner'>;

  constructor(opts: DownloadsOptions) {
    this.store = opts.store;
    this.checkpoints = opts.checkpoints;
    this.chunkBytes = opts.chunkBytes;
    this.studies = opts.studies;
  }

  /** Resolves what a download request may read: the header to send and the file behind it. */
  async openDownload(node: NodeRecord, request: DownloadModelRequest__Output): Promise<{ header: TensorBundleHeader; path: string }> {
    let studyId: string;
    let stored: { path: string; sha256: string };
    if (request.taskId !== undefined && request.selector === 'taskId') {
      const task = await ownTask(this.store, node, request.taskId);
      stored = this.studies.openRunner(task).modelForTask(task);
      studyId = task.studyId;
    } else if (request.committed) {
      const { studyId: id, round } = request.committed;
      const record = await this.store.getCommittedRound(id, round);
      if (record?.checkpointPath == null || record.checkpointSha256 === null) throw new FedlhsError('NOT_FOUND', `study ${id} has no committed round ${round}`);
      stored = { path: record.checkpointPath, sha256: record.checkpointSha256 };
      studyId = id;
    } else {
      throw new FedlhsError('INVALID_ARGUMENT', 'DownloadModelRequest needs task_id or committed');
    }
    const specs = this.studies.runner(studyId)?.modelSpecs ?? this.checkpoints.loadSpecs(studyId);
    return {
      header: {
        tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })),
        totalBytes: bundleLength(specs) * 4,
        sha256: Buffer.from(stored.sha256, 'hex'),
        chunkSize: this.chunkBytes,
      },
      path: stored.path,
    };
  }
}
