SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.api_tokens (
    id text NOT NULL,
    name text NOT NULL,
    token_hash text NOT NULL,
    user_id text NOT NULL,
    role text NOT NULL,
    created_at text NOT NULL,
    expires_at text,
    last_used_at text,
    revoked_at text
);

CREATE TABLE public.artifacts (
    id text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    signature text NOT NULL,
    key_id text NOT NULL,
    created_at text NOT NULL,
    created_by text NOT NULL
);

CREATE TABLE public.audit_log (
    id text NOT NULL,
    at text NOT NULL,
    actor_kind text NOT NULL,
    actor_id text,
    actor_name text,
    action text NOT NULL,
    target_kind text,
    target_id text,
    target_name text,
    outcome text NOT NULL,
    ip text,
    detail text
);

CREATE TABLE public.device_group_members (
    group_id text NOT NULL,
    device_id text NOT NULL
);

CREATE TABLE public.device_groups (
    id text NOT NULL,
    name text NOT NULL,
    description text,
    kind text NOT NULL,
    query text,
    created_by text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL
);

CREATE TABLE public.device_history (
    device_id text NOT NULL,
    resolution integer NOT NULL,
    bucket integer NOT NULL,
    samples integer NOT NULL,
    cpu_min real,
    cpu_max real,
    cpu_sum real,
    mem_used_min real,
    mem_used_max real,
    mem_used_sum real,
    mem_total real,
    ds_used_min real,
    ds_used_max real,
    ds_used_sum real,
    ds_capacity real
);

CREATE TABLE public.device_presence_history (
    device_id text NOT NULL,
    at text NOT NULL,
    state text NOT NULL
);

CREATE TABLE public.device_tags (
    device_id text NOT NULL,
    tag text NOT NULL
);

CREATE TABLE public.devices (
    id text NOT NULL,
    name text NOT NULL,
    secret_hash text NOT NULL,
    presence text NOT NULL,
    last_seen_at text,
    enrolled_at text NOT NULL,
    updated_at text NOT NULL,
    enrollment_token_id text,
    hypervisor_kind text,
    agent_version text,
    facts text,
    vms text,
    status_seq integer DEFAULT 0 NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    pending_secret_hash text,
    flags text,
    last_address text,
    mqtt_username text,
    pending_mqtt_username text
)
WITH (fillfactor='50');

CREATE TABLE public.enrollment_tokens (
    id text NOT NULL,
    name text NOT NULL,
    token_hash text NOT NULL,
    expires_at text NOT NULL,
    max_uses integer NOT NULL,
    uses integer DEFAULT 0 NOT NULL,
    revoked integer DEFAULT 0 NOT NULL,
    created_at text NOT NULL,
    created_by text NOT NULL
);

CREATE TABLE public.fleet_history (
    resolution integer NOT NULL,
    metric text NOT NULL,
    bucket integer NOT NULL,
    label text NOT NULL,
    min real NOT NULL,
    max real NOT NULL,
    sum real NOT NULL,
    samples integer NOT NULL
);

CREATE TABLE public.history_marks (
    name text NOT NULL,
    bucket integer NOT NULL
);

CREATE TABLE public.kysely_migration (
    name character varying(255) NOT NULL,
    "timestamp" character varying(255) NOT NULL
);

CREATE TABLE public.kysely_migration_lock (
    id character varying(255) NOT NULL,
    is_locked integer DEFAULT 0 NOT NULL
);

CREATE TABLE public.leases (
    name text NOT NULL,
    holder text NOT NULL,
    expires_ms bigint NOT NULL
);

CREATE TABLE public.login_throttle (
    throttle_key text NOT NULL,
    failures integer NOT NULL,
    window_start text NOT NULL,
    locked_until text NOT NULL
);

CREATE TABLE public.manager_instances (
    id text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    url text,
    broker text NOT NULL,
    keys_fingerprint text NOT NULL,
    started_ms bigint NOT NULL,
    heartbeat_ms bigint NOT NULL
);

CREATE TABLE public.relayed_events (
    id text NOT NULL,
    payload text NOT NULL,
    created_ms bigint NOT NULL
);

CREATE TABLE public.rollout_devices (
    rollout_id text NOT NULL,
    device_id text NOT NULL,
    wave integer NOT NULL,
    state text NOT NULL,
    task_id text,
    attempts integer DEFAULT 0 NOT NULL,
    error_code text,
    error_message text,
    verify_until text,
    updated_at text NOT NULL,
    finished_at text
);

CREATE TABLE public.rollout_waves (
    rollout_id text NOT NULL,
    wave integer NOT NULL,
    size integer NOT NULL,
    started_at text,
    gate_met_at text
);

CREATE TABLE public.rollouts (
    id text NOT NULL,
    name text NOT NULL,
    state text NOT NULL,
    pause_reason text,
    operation_kind text NOT NULL,
    operation text NOT NULL,
    target text NOT NULL,
    membership text NOT NULL,
    policy text NOT NULL,
    current_wave integer DEFAULT 0 NOT NULL,
    wave_count integer NOT NULL,
    base_failed integer DEFAULT 0 NOT NULL,
    base_finished integer DEFAULT 0 NOT NULL,
    created_by text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    finished_at text,
    deadline_at text NOT NULL
);

CREATE TABLE public.sessions (
    id text NOT NULL,
    token_hash text NOT NULL,
    user_id text NOT NULL,
    kind text NOT NULL,
    name text,
    created_at text NOT NULL,
    expires_at text NOT NULL
);

CREATE TABLE public.tasks (
    id text NOT NULL,
    device_id text NOT NULL,
    kind text NOT NULL,
    operation text NOT NULL,
    vm_id text,
    state text NOT NULL,
    progress_pct integer DEFAULT 0 NOT NULL,
    progress_message text,
    cancel_requested integer DEFAULT 0 NOT NULL,
    error_code text,
    error_message text,
    result_vm text,
    late_result text,
    retry_of text,
    attempt integer DEFAULT 1 NOT NULL,
    created_by text NOT NULL,
    created_at text NOT NULL,
    sent_at text,
    started_at text,
    finished_at text,
    deadline_at text NOT NULL,
    updated_at text NOT NULL,
    sent_by text,
    device_name text,
    vm_name text,
    artifact_name text,
    artifact_version text
);

CREATE TABLE public.users (
    id text NOT NULL,
    username text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL
);

INSERT INTO public.api_tokens (id, name, token_hash, user_id, role, created_at, expires_at, last_used_at, revoked_at) VALUES ('00000000-0000-4000-8000-00000000f001', 'ci', '9c071a20daf01014e3094ae819c8dae2a69fb73d0b13e9c5e3cae4c538e0135b', '00000000-0000-4000-8000-00000000a002', 'operator', '2026-01-02T03:04:05.000Z', NULL, '2026-01-02T04:00:00.000Z', NULL);

INSERT INTO public.artifacts (id, kind, name, version, size, sha256, signature, key_id, created_at, created_by) VALUES ('art_0fixture0ova', 'ova', 'ubuntu', '24.04', 5000000123, 'abababababababababababababababababababababababababababababababab', 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==', 'key_fixture', '2026-01-02T03:04:05.000Z', 'admin');
INSERT INTO public.artifacts (id, kind, name, version, size, sha256, signature, key_id, created_at, created_by) VALUES ('art_0fixture0patch', 'patch', 'hotfix', '1', 12, 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', 'AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==', 'key_fixture', '2026-01-02T04:00:00.000Z', 'ops-anna');

INSERT INTO public.audit_log (id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, outcome, ip, detail) VALUES ('aud_0fixture000001', '2026-01-02T03:04:05.000Z', 'user', '00000000-0000-4000-8000-00000000a001', 'admin', 'user.create', 'user', '00000000-0000-4000-8000-00000000a002', 'ops-anna', 'ok', '127.0.0.1', '{"role":"operator"}');
INSERT INTO public.audit_log (id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, outcome, ip, detail) VALUES ('aud_0fixture000002', '2026-01-02T04:00:00.000Z', 'anonymous', NULL, 'mallory', 'login.failed', NULL, NULL, NULL, 'denied', '198.51.100.7', NULL);
INSERT INTO public.audit_log (id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, outcome, ip, detail) VALUES ('aud_0fixture000003', '2026-01-02T04:00:00.000Z', 'user', '00000000-0000-4000-8000-00000000a002', 'ops-anna', 'device.block', 'device', '00000000-0000-4000-8000-00000000d002', 'edge-b', 'ok', '127.0.0.1', NULL);
INSERT INTO public.audit_log (id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, outcome, ip, detail) VALUES ('aud_0fixture000004', '2026-01-02T04:00:00.000Z', 'user', '00000000-0000-4000-8000-00000000a002', 'ops-anna', 'vm.power', 'vm', 'vm-101', 'db — ünïcode', 'ok', '127.0.0.1', '{"status":202,"device":"00000000-0000-4000-8000-00000000d001","deviceName":"edge-a","task":"tsk_0fixture000002"}');
INSERT INTO public.audit_log (id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, target_name, outcome, ip, detail) VALUES ('aud_0fixture000005', '2026-01-02T04:00:00.000Z', 'user', '00000000-0000-4000-8000-00000000a002', 'ops-anna', 'vm.power', 'vm', 'vm-9', NULL, 'failed', '127.0.0.1', '{"status":404,"device":"00000000-0000-4000-8000-00000000d002","error":{"code":"not_found","message":"no VM vm-9"}}');

INSERT INTO public.device_group_members (group_id, device_id) VALUES ('grp_0fixture0fixed', '00000000-0000-4000-8000-00000000d001');
INSERT INTO public.device_group_members (group_id, device_id) VALUES ('grp_0fixture0fixed', '00000000-0000-4000-8000-00000000d002');

INSERT INTO public.device_groups (id, name, description, kind, query, created_by, created_at, updated_at) VALUES ('grp_0fixture0query', 'berlin', 'every device in Berlin', 'query', '{"tags":["site=berlin"]}', 'admin', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z');
INSERT INTO public.device_groups (id, name, description, kind, query, created_by, created_at, updated_at) VALUES ('grp_0fixture0fixed', 'pilot', NULL, 'static', NULL, 'ops-anna', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z');

INSERT INTO public.device_history (device_id, resolution, bucket, samples, cpu_min, cpu_max, cpu_sum, mem_used_min, mem_used_max, mem_used_sum, mem_total, ds_used_min, ds_used_max, ds_used_sum, ds_capacity) VALUES ('00000000-0000-4000-8000-00000000d001', 1, 29455440, 2, 10.5, 30.25, 40.75, 1000, 1200, 2200, 8192, 250, 250, 500, 500);
INSERT INTO public.device_history (device_id, resolution, bucket, samples, cpu_min, cpu_max, cpu_sum, mem_used_min, mem_used_max, mem_used_sum, mem_total, ds_used_min, ds_used_max, ds_used_sum, ds_capacity) VALUES ('00000000-0000-4000-8000-00000000d001', 15, 29455440, 2, NULL, NULL, NULL, NULL, NULL, NULL, 8192, NULL, NULL, NULL, NULL);

INSERT INTO public.device_presence_history (device_id, at, state) VALUES ('00000000-0000-4000-8000-00000000d001', '2026-01-02T03:04:05.000Z', 'online');
INSERT INTO public.device_presence_history (device_id, at, state) VALUES ('00000000-0000-4000-8000-00000000d001', '2026-01-02T04:00:00.000Z', 'offline');
INSERT INTO public.device_presence_history (device_id, at, state) VALUES ('00000000-0000-4000-8000-00000000d002', '2026-01-02T03:04:05.000Z', 'unresponsive');

INSERT INTO public.device_tags (device_id, tag) VALUES ('00000000-0000-4000-8000-00000000d001', 'site=berlin');
INSERT INTO public.device_tags (device_id, tag) VALUES ('00000000-0000-4000-8000-00000000d001', 'tier:1');
INSERT INTO public.device_tags (device_id, tag) VALUES ('00000000-0000-4000-8000-00000000d002', 'site=berlin');

INSERT INTO public.devices (id, name, secret_hash, presence, last_seen_at, enrolled_at, updated_at, enrollment_token_id, hypervisor_kind, agent_version, facts, vms, status_seq, status, pending_secret_hash, flags, last_address, mqtt_username, pending_mqtt_username) VALUES ('00000000-0000-4000-8000-00000000d001', 'edge-a', '2f7b0c105e36ca0457db6930575a7bd138d02894625d72b7740d2569750dc6ba', 'offline', '2026-01-02T04:00:00.000Z', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z', '00000000-0000-4000-8000-00000000c001', 'sim', '0.1.0', '{"hostname":"edge-a","hypervisor":{"kind":"sim","version":"1.0","build":"test"},"model":"Test Box 1000","cpu":{"model":"Test CPU @ 2.0GHz","cores":4,"mhz":2000,"usagePct":12.5},"memory":{"totalMB":8192,"usedMB":1024},"datastores":[{"name":"datastore1","capacityGB":500,"freeGB":250}],"networks":["VM Network"],"agentVersion":"0.1.0","uptimeSec":1000,"agentUptimeSec":100}', '[{"id":"vm-100","name":"web","powerState":"on","vcpus":2,"memoryMB":2048,"diskGB":20,"guestOs":"linux"},{"id":"vm-101","name":"db — ünïcode","powerState":"off","vcpus":2,"memoryMB":2048,"diskGB":20,"guestOs":"linux"}]', 42, 'active', NULL, '[]', '192.0.2.10', NULL, NULL);
INSERT INTO public.devices (id, name, secret_hash, presence, last_seen_at, enrolled_at, updated_at, enrollment_token_id, hypervisor_kind, agent_version, facts, vms, status_seq, status, pending_secret_hash, flags, last_address, mqtt_username, pending_mqtt_username) VALUES ('00000000-0000-4000-8000-00000000d002', 'edge-b', '6c0a7545ff01a2784cd7f9e8c139236310e8aca69fb7e77d4f091c3425497d2e', 'offline', NULL, '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', '00000000-0000-4000-8000-00000000c001', NULL, NULL, NULL, NULL, 0, 'blocked', NULL, '["credential_clone_suspected"]', NULL, NULL, NULL);

INSERT INTO public.enrollment_tokens (id, name, token_hash, expires_at, max_uses, uses, revoked, created_at, created_by) VALUES ('00000000-0000-4000-8000-00000000c001', 'shops', '9f13b8d05ffe7b077cbcef0850b8de7fa84a4c737a44f7341d54d06b60e15081', '2036-01-01T00:00:00.000Z', 50, 2, 0, '2026-01-02T03:04:05.000Z', 'admin');

INSERT INTO public.fleet_history (resolution, metric, bucket, label, min, max, sum, samples) VALUES (1, 'presence', 29455440, 'online', 0, 1, 1, 2);
INSERT INTO public.fleet_history (resolution, metric, bucket, label, min, max, sum, samples) VALUES (15, 'tasks', 29455440, 'failed/vm.power/not_found', 1, 1, 1, 1);
INSERT INTO public.fleet_history (resolution, metric, bucket, label, min, max, sum, samples) VALUES (1, 'enrollments', 29455440, '', 2, 2, 2, 1);

INSERT INTO public.history_marks (name, bucket) VALUES ('fleet-counted', 29455441);
INSERT INTO public.history_marks (name, bucket) VALUES ('fleet-rolled-up', 29455440);

INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('001-initial', '2026-12-06T13:28:00.072Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('002-tasks', '2026-12-06T13:28:00.077Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('003-audit-api-tokens', '2026-12-06T13:28:00.084Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('004-device-security', '2026-12-06T13:28:00.086Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('005-artifacts', '2026-12-06T13:28:00.089Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('006-login-throttle', '2026-12-06T13:28:00.091Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('007-cluster', '2026-12-06T13:28:00.096Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('008-broker-accounts', '2026-12-06T13:28:00.103Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('009-groups-rollouts', '2026-12-06T13:28:00.115Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('010-history', '2026-12-06T13:28:00.126Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('011-task-names', '2026-12-06T13:28:00.127Z');
INSERT INTO public.kysely_migration (name, "timestamp") VALUES ('012-devices-fillfactor', '2026-12-06T13:28:00.128Z');

INSERT INTO public.kysely_migration_lock (id, is_locked) VALUES ('migration_lock', 0);

INSERT INTO public.leases (name, holder, expires_ms) VALUES ('task-deadlines', 'm-f1x7re', 1700000105000);

INSERT INTO public.login_throttle (throttle_key, failures, window_start, locked_until) VALUES ('a:mallory', 2, '2026-01-02T04:00:00.000Z', '1970-01-01T00:00:00.000Z');

INSERT INTO public.manager_instances (id, hostname, pid, version, url, broker, keys_fingerprint, started_ms, heartbeat_ms) VALUES ('m-f1x7re', 'old-host', 4242, '0.1.0', NULL, 'embedded', 'key_fixture:00ff', 1700000000000, 1700000100000);

INSERT INTO public.relayed_events (id, payload, created_ms) VALUES ('fixture-event', '{"type":"device","device":{"id":"00000000-0000-4000-8000-00000000d001","presence":"online","lastSeenAt":"2026-01-02T04:00:00.000Z"}}', 1700000000000);

INSERT INTO public.rollout_devices (rollout_id, device_id, wave, state, task_id, attempts, error_code, error_message, verify_until, updated_at, finished_at) VALUES ('rol_0fixture000001', '00000000-0000-4000-8000-00000000d001', 0, 'failed', 'tsk_0fixture000002', 1, 'not_found', 'no VM with id "vm-101"', NULL, '2026-01-02T04:00:00.000Z', '2026-01-02T04:00:00.000Z');
INSERT INTO public.rollout_devices (rollout_id, device_id, wave, state, task_id, attempts, error_code, error_message, verify_until, updated_at, finished_at) VALUES ('rol_0fixture000001', '00000000-0000-4000-8000-00000000d002', 1, 'pending', NULL, 0, NULL, NULL, NULL, '2026-01-02T03:04:05.000Z', NULL);

INSERT INTO public.rollout_waves (rollout_id, wave, size, started_at, gate_met_at) VALUES ('rol_0fixture000001', 0, 1, '2026-01-02T03:04:05.000Z', NULL);
INSERT INTO public.rollout_waves (rollout_id, wave, size, started_at, gate_met_at) VALUES ('rol_0fixture000001', 1, 1, NULL, NULL);

INSERT INTO public.rollouts (id, name, state, pause_reason, operation_kind, operation, target, membership, policy, current_wave, wave_count, base_failed, base_finished, created_by, created_at, updated_at, finished_at, deadline_at) VALUES ('rol_0fixture000001', 'power on pilot', 'paused', 'error threshold reached', 'vm.power', '{"kind":"vm.power","vmId":"vm-101","action":"on"}', '{"groupId":"grp_0fixture0fixed"}', 'fixed', '{"waves":[1,1]}', 0, 2, 0, 0, 'ops-anna', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z', NULL, '2036-01-01T00:00:00.000Z');

INSERT INTO public.sessions (id, token_hash, user_id, kind, name, created_at, expires_at) VALUES ('00000000-0000-4000-8000-00000000e001', 'a7552c626969fdff6dfb5c2f8e43df1ef903928764c13dc8b86b038363957454', '00000000-0000-4000-8000-00000000a002', 'session', NULL, '2026-01-02T04:00:00.000Z', '2036-01-01T00:00:00.000Z');

INSERT INTO public.tasks (id, device_id, kind, operation, vm_id, state, progress_pct, progress_message, cancel_requested, error_code, error_message, result_vm, late_result, retry_of, attempt, created_by, created_at, sent_at, started_at, finished_at, deadline_at, updated_at, sent_by, device_name, vm_name, artifact_name, artifact_version) VALUES ('tsk_0fixture000001', '00000000-0000-4000-8000-00000000d001', 'vm.create', '{"kind":"vm.create","spec":{"name":"web","vcpus":2,"memoryMB":2048,"diskGB":20}}', 'vm-100', 'succeeded', 100, 'done', 0, NULL, NULL, '{"id":"vm-100","name":"web","powerState":"off","vcpus":2,"memoryMB":2048,"diskGB":20,"guestOs":"linux"}', NULL, NULL, 1, 'admin', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z', '2036-01-01T00:00:00.000Z', '2026-01-02T04:00:00.000Z', NULL, 'edge-a', 'web', NULL, NULL);
INSERT INTO public.tasks (id, device_id, kind, operation, vm_id, state, progress_pct, progress_message, cancel_requested, error_code, error_message, result_vm, late_result, retry_of, attempt, created_by, created_at, sent_at, started_at, finished_at, deadline_at, updated_at, sent_by, device_name, vm_name, artifact_name, artifact_version) VALUES ('tsk_0fixture000002', '00000000-0000-4000-8000-00000000d001', 'vm.power', '{"kind":"vm.power","vmId":"vm-101","action":"on"}', 'vm-101', 'failed', 10, NULL, 0, 'not_found', 'no VM with id "vm-101"', NULL, NULL, NULL, 1, 'ops-anna', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z', '2036-01-01T00:00:00.000Z', '2026-01-02T04:00:00.000Z', NULL, 'edge-a', 'db — ünïcode', NULL, NULL);
INSERT INTO public.tasks (id, device_id, kind, operation, vm_id, state, progress_pct, progress_message, cancel_requested, error_code, error_message, result_vm, late_result, retry_of, attempt, created_by, created_at, sent_at, started_at, finished_at, deadline_at, updated_at, sent_by, device_name, vm_name, artifact_name, artifact_version) VALUES ('tsk_0fixture000003', '00000000-0000-4000-8000-00000000d001', 'vm.power', '{"kind":"vm.power","vmId":"vm-101","action":"on"}', 'vm-101', 'queued', 0, NULL, 0, NULL, NULL, NULL, NULL, 'tsk_0fixture000002', 2, 'ops-anna', '2026-01-02T04:00:00.000Z', NULL, NULL, NULL, '2036-01-01T00:00:00.000Z', '2026-01-02T04:00:00.000Z', NULL, NULL, NULL, NULL, NULL);
INSERT INTO public.tasks (id, device_id, kind, operation, vm_id, state, progress_pct, progress_message, cancel_requested, error_code, error_message, result_vm, late_result, retry_of, attempt, created_by, created_at, sent_at, started_at, finished_at, deadline_at, updated_at, sent_by, device_name, vm_name, artifact_name, artifact_version) VALUES ('tsk_0fixture000004', '00000000-0000-4000-8000-00000000d002', 'vm.delete', '{"kind":"vm.delete","vmId":"vm-7"}', 'vm-7', 'timed_out', 0, NULL, 1, NULL, NULL, NULL, '{"outcome":"succeeded","at":"2026-01-02T04:00:00.000Z"}', NULL, 1, 'admin', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z', NULL, '2026-01-02T04:00:00.000Z', '2026-01-02T04:00:00.000Z', '2026-01-02T04:00:00.000Z', NULL, 'edge-b', NULL, NULL, NULL);

INSERT INTO public.users (id, username, password_hash, role, created_at, updated_at) VALUES ('00000000-0000-4000-8000-00000000a001', 'admin', 'scrypt$131072$8$1$yuMoxgPHf8atxadvy9RZxw==$/1zC35mYFocxyORyukdQZ8PfnC35dYGAuam4APgFIwQ=', 'admin', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z');
INSERT INTO public.users (id, username, password_hash, role, created_at, updated_at) VALUES ('00000000-0000-4000-8000-00000000a002', 'ops-anna', 'scrypt$131072$8$1$pHDY0z06lFRZDrgTNI4Xtw==$yOWO0fPZaBIjuFelEGV+aB8bQyeQrHJRuHvNDm3y95s=', 'operator', '2026-01-02T03:04:05.000Z', '2026-01-02T04:00:00.000Z');

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.artifacts
    ADD CONSTRAINT artifacts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.device_group_members
    ADD CONSTRAINT device_group_members_pk PRIMARY KEY (group_id, device_id);

ALTER TABLE ONLY public.device_groups
    ADD CONSTRAINT device_groups_name_key UNIQUE (name);

ALTER TABLE ONLY public.device_groups
    ADD CONSTRAINT device_groups_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.device_history
    ADD CONSTRAINT device_history_pk PRIMARY KEY (device_id, resolution, bucket);

ALTER TABLE ONLY public.device_presence_history
    ADD CONSTRAINT device_presence_history_pk PRIMARY KEY (device_id, at);

ALTER TABLE ONLY public.device_tags
    ADD CONSTRAINT device_tags_pk PRIMARY KEY (device_id, tag);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.enrollment_tokens
    ADD CONSTRAINT enrollment_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.enrollment_tokens
    ADD CONSTRAINT enrollment_tokens_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.fleet_history
    ADD CONSTRAINT fleet_history_pk PRIMARY KEY (resolution, metric, bucket, label);

ALTER TABLE ONLY public.history_marks
    ADD CONSTRAINT history_marks_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.kysely_migration_lock
    ADD CONSTRAINT kysely_migration_lock_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.kysely_migration
    ADD CONSTRAINT kysely_migration_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.leases
    ADD CONSTRAINT leases_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.login_throttle
    ADD CONSTRAINT login_throttle_pkey PRIMARY KEY (throttle_key);

ALTER TABLE ONLY public.manager_instances
    ADD CONSTRAINT manager_instances_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.relayed_events
    ADD CONSTRAINT relayed_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.rollout_devices
    ADD CONSTRAINT rollout_devices_pk PRIMARY KEY (rollout_id, device_id);

ALTER TABLE ONLY public.rollout_waves
    ADD CONSTRAINT rollout_waves_pk PRIMARY KEY (rollout_id, wave);

ALTER TABLE ONLY public.rollouts
    ADD CONSTRAINT rollouts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_username_key UNIQUE (username);

CREATE INDEX api_tokens_user_id ON public.api_tokens USING btree (user_id);

CREATE UNIQUE INDEX artifacts_kind_name_version ON public.artifacts USING btree (kind, name, version);

CREATE INDEX audit_log_action ON public.audit_log USING btree (action, id);

CREATE INDEX audit_log_actor ON public.audit_log USING btree (actor_name, id);

CREATE INDEX audit_log_target ON public.audit_log USING btree (target_id, id);

CREATE INDEX device_tags_tag ON public.device_tags USING btree (tag);

CREATE INDEX devices_enrolled_at ON public.devices USING btree (enrolled_at);

CREATE INDEX devices_name ON public.devices USING btree (name);

CREATE INDEX devices_presence ON public.devices USING btree (presence);

CREATE INDEX devices_status ON public.devices USING btree (status);

CREATE INDEX rollout_devices_device ON public.rollout_devices USING btree (device_id, state);

CREATE INDEX rollout_devices_state ON public.rollout_devices USING btree (rollout_id, state, wave);

CREATE INDEX rollouts_state ON public.rollouts USING btree (state, id);

CREATE INDEX sessions_user_id ON public.sessions USING btree (user_id);

CREATE INDEX tasks_device_state ON public.tasks USING btree (device_id, state, id);

CREATE INDEX tasks_finished_at ON public.tasks USING btree (finished_at);

CREATE INDEX tasks_state_deadline ON public.tasks USING btree (state, deadline_at);

CREATE INDEX tasks_vm ON public.tasks USING btree (vm_id);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.device_tags
    ADD CONSTRAINT device_tags_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;
