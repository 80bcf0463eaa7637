/**
 * The store contract suite (design §2.5): every `*.contract.ts` runs once per store kind
 * registered in contract/store-kinds.ts. Add a contract file's import here.
 */
import './contract/enrolment.contract.js';
import './contract/studies-rounds.contract.js';
import './contract/tasks.contract.js';
import './contract/contributions.contract.js';
import './contract/views.contract.js';
import './contract/unit-of-work.contract.js';
import './contract/migrations.contract.js';
import './contract/participation.contract.js';
import './contract/probe.contract.js';
import './contract/releases.contract.js';
import './contract/series.contract.js';
import './contract/audit-chain.contract.js';
import './contract/node-certificates.contract.js';
