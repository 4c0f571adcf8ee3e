import type { Migration, MigrationProvider } from 'kysely';
import { initial } from './001-initial.js';
import { tasks } from './002-tasks.js';
import { auditApiTokens } from './003-audit-api-tokens.js';
import { deviceSecurity } from './004-device-security.js';
import { artifacts } from './005-artifacts.js';
import { loginThrottle } from './006-login-throttle.js';
import { cluster } from './007-cluster.js';
import { brokerAccounts } from './008-broker-accounts.js';
import { groupsRollouts } from './009-groups-rollouts.js';
import { history } from './010-history.js';
import { taskNames } from './011-task-names.js';
import { devicesFillfactor } from './012-devices-fillfactor.js';
import { enrollmentKey } from './013-enrollment-key.js';

/**
 * Migrations are compiled into the program (no folder scan at run time), listed in order.
 * Each one must run on both SQLite and PostgreSQL; the store suite checks that.
 */
const migrations: Record<string, Migration> = {
  '001-initial': initial,
  '002-tasks': tasks,
  '003-audit-api-tokens': auditApiTokens,
  '004-device-security': deviceSecurity,
  '005-artifacts': artifacts,
  '006-login-throttle': loginThrottle,
  '007-cluster': cluster,
  '008-broker-accounts': brokerAccounts,
  '009-groups-rollouts': groupsRollouts,
  '010-history': history,
  '011-task-names': taskNames,
  '012-devices-fillfactor': devicesFillfactor,
  '013-enrollment-key': enrollmentKey,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
