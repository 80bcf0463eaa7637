/**
 * Reusable transfer buffers (design core-redesign §5): one free list per power-of-two size class,
 * so a download reads each chunk into a buffer it returns afterwards instead of allocating a new
 * 1–4 MiB buffer per chunk. `acquire(n)` hands out exactly `n` bytes (a view on a buffer of the
 * next class up); `release` puts the class buffer back, up to `maxPooledBytes` held idle.
 */
export interface BufferPoolOptions {
  /** Idle bytes the pool keeps for reuse; buffers released above this are left to the GC. Default 16 MiB. */
  maxPooledBytes?: number;
  /** Smallest class (a power of two). Default 64 KiB. */
  minClassBytes?: number;
}

const nextPowerOfTwo = (n: number): number => 2 ** Math.ceil(Math.log2(n));

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly maxPooledBytes: number;
  private readonly minClassBytes: number;
  private idleBytes = 0;
  private outstanding = 0;

  constructor(opts: BufferPoolOptions = {}) {
    this.maxPooledBytes = opts.maxPooledBytes ?? 16 * 1024 * 1024;
    this.minClassBytes = opts.minClassBytes ?? 64 * 1024;
  }

  /** Bytes held idle for reuse. */
  get pooledBytes(): number {
    return this.idleBytes;
  }

  /** Class buffers handed out and not yet released. */
  get inUse(): number {
    return this.outstanding;
  }

  /** A buffer of exactly `bytes` bytes (contents undefined). Give it back with {@link release}. */
  acquire(bytes: number): Buffer {
    if (!Number.isInteger(bytes) || bytes <= 0) throw new RangeError(`BufferPool.acquire: bytes must be a positive integer, got ${bytes}`);
    const size = Math.max(this.minClassBytes, nextPowerOfTwo(bytes));
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused !== undefined) this.idleBytes -= size;
    this.outstanding++;
    // allocUnsafeSlow: a buffer of its own (never a slice of Node's shared 8 KiB pool), so the
    // ArrayBuffer behind any view identifies the class buffer on release.
    const backing = reused ?? Buffer.allocUnsafeSlow(size).buffer;
    return Buffer.from(backing, 0, bytes);
  }

  /** Returns a buffer from {@link acquire}; do not use it afterwards. Buffers from elsewhere are ignored. */
  release(buffer: Uint8Array): void {
    const backing = buffer.buffer;
    const size = backing.byteLength;
    if (!(backing instanceof ArrayBuffer) || buffer.byteOffset !== 0 || size < this.minClassBytes || nextPowerOfTwo(size) !== size) return;
    let list = this.free.get(size);
    if (list === undefined) this.free.set(size, (list = []));
    if (list.includes(backing)) throw new Error('BufferPool.release: buffer released twice');
    this.outstanding = Math.max(0, this.outstanding - 1);
    if (this.idleBytes + size > this.maxPooledBytes) return;
    list.push(backing);
    this.idleBytes += size;
  }
}
