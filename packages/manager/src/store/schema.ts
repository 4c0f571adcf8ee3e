/**
 * Table shapes as Kysely sees them. Timestamps are ISO-8601 UTC text and booleans are
 * 0/1 integers so that the same queries and results hold on SQLite and PostgreSQL.
 * JSON documents (host facts, VM inventory) are text, parsed at the service edge.
 */
export interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  created_at: string;
  updated_at: string;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  kind: string;
  name: string | null;
  created_at: string;
  expires_at: string;
}

export interface EnrollmentTokensTable {
  id: string;
  name: string;
  token_hash: string;
  expires_at: string;
  max_uses: number;
  uses: number;
  revoked: number;
  created_at: string;
  created_by: string;
}

export interface DevicesTable {
  id: string;
  name: string;
  secret_hash: string;
  presence: string;
  last_seen_at: string | null;
  enrolled_at: string;
  updated_at: string;
  enrollment_token_id: string | null;
  hypervisor_kind: string | null;
  agent_version: string | null;
  facts: string | null;
  vms: string | null;
  status_seq: number;
}

export interface DeviceTagsTable {
  device_id: string;
  tag: string;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  enrollment_tokens: EnrollmentTokensTable;
  devices: DevicesTable;
  device_tags: DeviceTagsTable;
}

