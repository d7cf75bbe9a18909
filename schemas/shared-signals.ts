/**
 * OpenID Shared Signals event types (CAEP 1.0, RISC 1.0): ingest reads Security Event Tokens that
 * carry them (services/ingest/normalizers/set.ts), the transmitter writes them (services/signals).
 */
export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
export const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

/** The event types Tourniquet transmits, by their short name (the last path segment of the URI). */
export const SIGNAL_TYPES = [
  'session-revoked',
  'credential-change',
  'account-disabled',
  'account-enabled',
  'account-credential-change-required',
] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];

export const SIGNAL_URI: Readonly<Record<SignalType, string>> = {
  'session-revoked': `${CAEP}session-revoked`,
  'credential-change': `${CAEP}credential-change`,
  'account-disabled': `${RISC}account-disabled`,
  'account-enabled': `${RISC}account-enabled`,
  'account-credential-change-required': `${RISC}account-credential-change-required`,
};
