import { describe, expect, it } from 'vitest';
import { positionalsAfterFirst } from './peers-cli.js';

describe('positionalsAfterFirst (peers forget refuses a second node id)', () => {
  it('finds a second node id, wherever it is', () => {
    expect(positionalsAfterFirst(['a', 'b'])).toEqual(['b']);
    expect(positionalsAfterFirst(['a', '--tls.mode', 'plaintext', 'b'])).toEqual(['b']);
    expect(positionalsAfterFirst(['a', '--log.level=debug', 'b', 'c'])).toEqual(['b', 'c']);
  });

  it('takes config flags and their values for what they are', () => {
    expect(positionalsAfterFirst(['a'])).toEqual([]);
    expect(positionalsAfterFirst(['a', '--tls.mode', 'plaintext'])).toEqual([]);
    expect(positionalsAfterFirst(['a', '--log.level=debug'])).toEqual([]);
    expect(positionalsAfterFirst(['--state-dir', '/x', 'a'])).toEqual([]);
  });
});
