import { describe, expect, it } from 'vitest';
import { prepareArgv, type CommandTree } from './cli.js';

const cmd = (name: string, commands: CommandTree[] = [], aliases: string[] = []): CommandTree => ({ name: () => name, aliases: () => aliases, commands });
const program = cmd('fedlhs-agent', [cmd('run'), cmd('review'), cmd('data', [cmd('check')]), cmd('approve')]);

describe('prepareArgv', () => {
  it('moves options given before the subcommand after it', () => {
    expect(prepareArgv(program, ['--config', 'agent.json', 'review'])).toEqual(['review', '--config', 'agent.json']);
    expect(prepareArgv(program, ['--state-dir', 's', 'data', 'check', '--manifest', 'm.yaml'])).toEqual(['data', 'check', '--manifest', 'm.yaml', '--state-dir', 's']);
    expect(prepareArgv(program, ['approve', 'abcd1234'])).toEqual(['approve', 'abcd1234']);
  });

  it('puts --help right after the command path, wherever it was', () => {
    expect(prepareArgv(program, ['run', '--tls-mode', 'plaintext', '--help'])).toEqual(['run', '--help', '--tls-mode', 'plaintext']);
    expect(prepareArgv(program, ['-h', 'data', 'check', '--x', '1'])).toEqual(['data', 'check', '--help', '--x', '1']);
    expect(prepareArgv(program, ['--help'])).toEqual(['--help']);
    expect(prepareArgv(program, ['review', '--', '--help'])).toEqual(['review', '--', '--help']);
  });
});
