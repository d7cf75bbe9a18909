import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { slackSignature, verifySlackSignature } from './slack-signature.ts';

const secret = '8f742231b10e8888abcd99yyyzzz85a5';
const body = 'payload=%7B%22type%22%3A%22block_actions%22%7D';

describe('Slack v0 request signatures', () => {
  it('matches the documented construction: v0= hex HMAC-SHA256 of v0:timestamp:body', () => {
    // the worked example published in Slack's "Verifying requests from Slack"
    // (https://api.slack.com/authentication/verifying-requests-from-slack): secret, timestamp, body, result
    const sig = slackSignature(
      secret,
      '1531420618',
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    );
    expect(sig).toBe('v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503');
  });

  it('accepts a fresh, correct signature and refuses everything else', () => {
    const now = 1_800_000_000;
    const ok = (ts: number, sig: string, b = body) =>
      verifySlackSignature({ secret, timestamp: String(ts), signature: sig, rawBody: b, nowSeconds: now });
    expect(ok(now, slackSignature(secret, String(now), body))).toEqual({ ok: true });
    expect(ok(now - 299, slackSignature(secret, String(now - 299), body))).toEqual({ ok: true });
    expect(ok(now - 301, slackSignature(secret, String(now - 301), body))).toMatchObject({
      reason: 'stale_timestamp',
    });
    expect(ok(now + 301, slackSignature(secret, String(now + 301), body))).toMatchObject({
      reason: 'stale_timestamp',
    });
    expect(ok(now, slackSignature('another-secret', String(now), body))).toMatchObject({
      reason: 'bad_signature',
    });
    expect(ok(now, slackSignature(secret, String(now), body), `${body}&x=1`)).toMatchObject({
      reason: 'bad_signature',
    });
    expect(ok(now, 'v0=short')).toMatchObject({ reason: 'bad_signature' });
    expect(
      verifySlackSignature({
        secret,
        timestamp: undefined,
        signature: 'v0=x',
        rawBody: body,
        nowSeconds: now,
      }),
    ).toMatchObject({ reason: 'missing_headers' });
  });

  it('refuses any change to the body (property)', () => {
    const now = 1_800_000_000;
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), (tampered, original) => {
        fc.pre(tampered !== original);
        const sig = slackSignature(secret, String(now), original);
        return !verifySlackSignature({
          secret,
          timestamp: String(now),
          signature: sig,
          rawBody: tampered,
          nowSeconds: now,
        }).ok;
      }),
    );
  });
});
