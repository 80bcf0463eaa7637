import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';

/** Size of the byte chunks handed to the stream. */
const CHUNK_BYTES = 1 << 20;

/**
 * A text file written line by line. Each line is encoded at once into a 1 MiB byte chunk, so
 * the string dies young (holding thousands of template strings until a join made the garbage
 * collector copy them again and again); full chunks go to the stream, and the writer waits for
 * 'drain' whenever the stream has more than a few chunks queued, so memory stays bounded.
 */
export class LineSink {
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private offset = 0;
  private full: Buffer[] = [];
  private readonly stream: WriteStream;
  private error: Error | undefined;

  constructor(path: string) {
    this.stream = createWriteStream(path, { highWaterMark: 4 * CHUNK_BYTES });
    // Recorded here and rethrown by flush/close, so an I/O error never goes unhandled.
    this.stream.on('error', (err) => {
      this.error ??= err;
    });
  }

  /** Queues one line (without its newline). */
  push(line: string): void {
    // line.length * 3 bounds the UTF-8 size without measuring it.
    const worst = line.length * 3 + 1;
    if (this.offset + worst > CHUNK_BYTES) this.rotate();
    if (worst > CHUNK_BYTES) {
      this.full.push(Buffer.from(`${line}\n`, 'utf8'));
      return;
    }
    this.offset += this.chunk.write(line, this.offset, 'utf8');
    this.chunk[this.offset++] = 0x0a;
  }

  /** Hands full chunks to the stream, if any. */
  async maybeFlush(): Promise<void> {
    if (this.full.length > 0) await this.writeFull();
  }

  /** Hands everything queued to the stream. */
  async flush(): Promise<void> {
    this.rotate();
    await this.writeFull();
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await finished(this.stream);
    if (this.error !== undefined) throw this.error;
  }

  /** Closes the file without flushing (after a failure elsewhere); never throws. */
  async abort(): Promise<void> {
    this.stream.destroy();
    await finished(this.stream).catch(() => undefined);
  }

  private rotate(): void {
    if (this.offset === 0) return;
    this.full.push(this.chunk.subarray(0, this.offset));
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.offset = 0;
  }

  private async writeFull(): Promise<void> {
    const chunks = this.full;
    this.full = [];
    for (const c of chunks) {
      if (this.error !== undefined) throw this.error;
      if (!this.stream.write(c)) await once(this.stream, 'drain');
    }
    if (this.error !== undefined) throw this.error;
  }
}
