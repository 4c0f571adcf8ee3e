import Type, { type Static } from 'typebox';
import { HostFacts } from './host-facts.js';

/**
 * A device id in its one canonical form: a UUID in lower case (what `crypto.randomUUID()`
 * makes). Ids are compared exactly everywhere (store, broker ACL, topics), so an id differing
 * only in case would be another device: enrollment refuses it rather than creating a twin.
 */
export const CanonicalDeviceId = Type.String({
  format: 'uuid',
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  description: 'a lower-case UUID',
});

/**
 * `POST /api/v1/enroll` — the one call an agent makes with an enrollment token. It travels
 * over HTTP(S) so that a token never grants anything on the broker.
 */
export const EnrollRequest = Type.Object(
  {
    token: Type.String({ minLength: 16, maxLength: 256 }),
    /** Random UUID the agent created on first start and keeps in its state dir, in lower case. */
    deviceId: CanonicalDeviceId,
    facts: HostFacts,
    /**
     * The device's current secret, when it re-enrolls an id the manager already knows.
     * Without it a known id is refused: a device cannot take over another's identity.
     * On a first enrollment, the device's enrollment key: random, kept in its state dir before
     * it asks, so that asking again after a lost answer (same token, same key) gets a new
     * credential rather than `device_id_conflict` (docs/security.md, "A lost enrollment answer").
     */
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const EnrollResponse = Type.Object(
  {
    deviceId: Type.String({ format: 'uuid' }),
    /** MQTT connection the device uses from now on; username and client id are the device id. */
    mqtt: Type.Object(
      {
        url: Type.String(),
        clientId: Type.String(),
        username: Type.String(),
        password: Type.String(),
        keepaliveSec: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    statusIntervalSec: Type.Integer({ minimum: 1 }),
    /**
     * PEM of the CA that signed the manager's TLS certificates. The agent pins it: from then on
     * it trusts only certificates chaining to it (docs/security.md). Absent when the manager
     * has no TLS of its own (a TLS-terminating proxy in front).
     */
    caCertificate: Type.Optional(Type.String({ maxLength: 65536 })),
    /** `pending` when the manager waits for an operator to approve this device before it may connect. */
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('pending')])),
    /**
     * The manager's Ed25519 artifact-manifest signing key (SubjectPublicKeyInfo PEM) and its
     * id. The agent pins it and refuses any artifact whose manifest it does not verify.
     * Optional: managers before artifacts did not send it.
     */
    signingKey: Type.Optional(
      Type.Object(
        { algorithm: Type.Literal('ed25519'), keyId: Type.String(), publicKeyPem: Type.String() },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type EnrollResponse = Static<typeof EnrollResponse>;

/**
 * `POST /api/v1/enroll/status` — an agent whose broker login was refused asks whether its
 * credential is still good, proving it holds it. On an external broker the manager re-creates
 * the device's broker client from the secret it was given (the broker may have lost it);
 * docs/security.md "External broker".
 */
export const EnrollStatusRequest = Type.Object(
  {
    deviceId: Type.String({ format: 'uuid' }),
    secret: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);
export type EnrollStatusRequest = Static<typeof EnrollStatusRequest>;

/**
 * `retry`: the credential is good and the device active, log in again now. `pending` /
 * `blocked`: good, but the device may not connect yet; keep retrying with backoff. A
 * credential that is not good is answered 401 `credential_invalid`, the one answer after which
 * the agent gives its credential up.
 */
export const EnrollStatusResponse = Type.Object(
  { state: Type.Union([Type.Literal('retry'), Type.Literal('pending'), Type.Literal('blocked')]) },
  { additionalProperties: false },
);
export type EnrollStatusResponse = Static<typeof EnrollStatusResponse>;
