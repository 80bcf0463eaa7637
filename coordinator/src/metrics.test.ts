import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorMetrics } from './metrics.js';

let metrics: CoordinatorMetrics | undefined;
afterEach(() => metrics?.close());

describe('coordinator metrics', () => {
  it('leaves out the default metrics whose scrape walks every open handle, and keeps the cheap ones', async () => {
    metrics = new CoordinatorMetrics();
    const text = await metrics.registry.metrics();
    for (const name of ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_resources', 'nodejs_active_requests']) {
      expect(text, name).not.toContain(`fedlhs_coordinator_${name}`);
    }
    for (const name of ['fedlhs_coordinator_process_cpu_seconds_total', 'fedlhs_coordinator_process_resident_memory_bytes', 'fedlhs_event_loop_delay_seconds', 'fedlhs_connected_nodes']) {
      expect(text, name).toContain(name);
    }
  });
});
