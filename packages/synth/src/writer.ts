import type { SimPatient } from './patient.js';

/** One export format being written, patient by patient. */
export interface ExportWriter {
  /** Queues every line of one patient (synchronous: no I/O). */
  write(patient: SimPatient): void;
  /** Hands queued lines to the files once there are enough, honouring back-pressure. */
  maybeFlush(): Promise<void>;
  /** Writes the rest and closes the files. */
  close(): Promise<void>;
  /** Closes the files after a failure; never throws. */
  abort(): Promise<void>;
}
