import { busContract } from '../../test/contract/bus.contract.ts';
import { InProcessBus } from './in-process.ts';

let n = 0;
busContract(
  'InProcessBus',
  {
    failure: 'publish-rejects',
    publishAwaitsHandlers: true,
    sharedGroups: false,
    retainsWhileUnsubscribed: false,
  },
  async () => {
    const run = `r${++n}`;
    return {
      newBus: async () => new InProcessBus(),
      topic: (name) => `${run}.${name}`,
      group: (name) => `${run}.${name}`,
      timeoutMs: 2000,
    };
  },
);
