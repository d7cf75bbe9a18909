/** The providers file's chat block: validation with every bad path named, secrets from env and files. */
import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../platform/errors.ts';
import { parseProvidersConfig } from './providers-config.ts';

const base = { providers: { '*': { type: 'dry-run' } } };
const slack = {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the providers file's ${ENV} syntax, on purpose
  botToken: '${SLACK_BOT_TOKEN}',
  signingSecretFile: 'secrets/slack',
  channel: 'C0APPROVALS',
  users: { U01ANN: { principal: 'ann', roles: ['analyst'] } },
};

function issues(raw: unknown): string[] {
  try {
    parseProvidersConfig(raw, { env: { SLACK_BOT_TOKEN: 'xoxb-1' }, baseDir: '/etc/tourniquet' });
  } catch (e) {
    expect(e).toBeInstanceOf(TourniquetError);
    const details = (e as TourniquetError).details as { issues: Array<{ path: string; message: string }> };
    return details.issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('chat configuration', () => {
  it('takes secrets from the environment and resolves secret files against the config folder', () => {
    const c = parseProvidersConfig(
      { ...base, chat: { slack, webhook: { url: 'https://hooks.example/t', secretFile: 'secrets/hook' } } },
      { env: { SLACK_BOT_TOKEN: 'xoxb-1' }, baseDir: '/etc/tourniquet' },
    );
    expect(c.chat).toMatchObject({
      modes: ['analyst', 'two-person'],
      slack: {
        botToken: 'xoxb-1',
        signingSecretFile: '/etc/tourniquet/secrets/slack',
        channel: 'C0APPROVALS',
      },
      webhook: {
        url: 'https://hooks.example/t',
        secretFile: '/etc/tourniquet/secrets/hook',
        timeoutMs: 10_000,
      },
    });
  });

  it('names every bad path', () => {
    const found = issues({
      ...base,
      chat: {
        slack: { ...slack, users: { 'ann@example': { principal: 'ann', roles: ['analyst'] } } },
        webhook: { url: 'not a url', secret: 'short' },
      },
    });
    expect(found).toEqual([
      'chat.slack.users.ann@example: Invalid key in record',
      'chat.webhook.url: Invalid URL',
      'chat.webhook.secret: Too small: expected string to have >=16 characters',
    ]);
    expect(
      issues({
        ...base,
        chat: { slack: { ...slack, users: { U01ANN: { principal: 'ann', roles: ['root'] } } } },
      })[0],
    ).toMatch(/^chat\.slack\.users\.U01ANN\.roles\.0: /);
    expect(issues({ ...base, chat: { slack: { ...slack, signingSecret: 'inline-too' } } })).toEqual([
      'chat.slack: configure exactly one of signingSecret, signingSecretFile',
    ]);
  });

  it('needs Slack, a webhook or both', () => {
    expect(issues({ ...base, chat: {} }).join('\n')).toContain('configure slack, webhook or both');
  });
});
