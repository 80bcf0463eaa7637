import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import { loadAgentConfig } from './config.js';
import { coordinatorAddresses } from './connection.js';

const load = (address: string) => loadAgentConfig({ env: { FEDLHS_COORDINATOR: address } });
const message = (address: string): string => {
  try {
    load(address);
  } catch (err) {
    expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`expected ${address} to be refused`);
};

describe('coordinator.address with several coordinators (active/standby)', () => {
  it('accepts a comma-separated list and splits it in order', () => {
    expect(load('c1.example:7443,c2.example:7443').coordinator.address).toBe('c1.example:7443,c2.example:7443');
    expect(coordinatorAddresses('c1.example:7443, [::1]:7443')).toEqual(['c1.example:7443', '[::1]:7443']);
    expect(coordinatorAddresses('one:1')).toEqual(['one:1']);
  });

  it('refuses a list with an address that is not host:port, naming it', () => {
    expect(message('c1.example:7443,c2.example')).toBe('coordinator.address: each comma-separated address must be host:port: "c2.example" in value "c1.example:7443,c2.example"');
    expect(message('c1.example:7443,')).toMatch(/"" in value/);
    expect(message('c1.example:7443,c2:99999')).toMatch(/the port must be from 1 to 65535/);
  });

  it('refuses an address named twice', () => {
    expect(message('c1:7443,c1:7443')).toBe('coordinator.address: c1:7443 is named twice: value was "c1:7443,c1:7443"');
  });
});
