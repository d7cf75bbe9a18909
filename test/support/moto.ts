/**
 * Test support: moto in server mode (scripts/moto.sh), a local AWS API emulator, for the AWS provider.
 *
 * startMoto() uses MOTO_URL when set; otherwise it runs `scripts/moto.sh up` (idempotent: reuses this
 * run's server) with an owner token (TQ_OWNER), which the script records only when it starts the
 * server; stopMoto() asks `down` to stop only that owner's server, so a test file can never stop (or
 * pull the run directory from under) a moto another one started. Tests share one server: every name they create carries a random suffix, and nothing resets it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  CreateAccessKeyCommand,
  CreateLoginProfileCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
} from '@aws-sdk/client-iam';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/moto.sh');

export interface MotoHandle {
  url: string;
  startedHere: boolean;
  /** The TQ_OWNER token `up` ran with. */
  owner?: string;
}

function recordedOwner(): string | undefined {
  try {
    return readFileSync(
      join(process.env.TOURNIQUET_RUN ?? '/tmp/tourniquet-infra', 'moto.owner'),
      'utf8',
    ).trim();
  } catch {
    return undefined;
  }
}

/** Why moto cannot run here, or null when it can (MOTO_URL set, or python3 found). */
export function motoUnavailableReason(): string | null {
  if (process.env.MOTO_URL) return null;
  const onPath = (process.env.PATH ?? '').split(':').some((p) => p && existsSync(join(p, 'python3')));
  return onPath ? null : 'no python3 on PATH and MOTO_URL is not set: moto cannot be started';
}

export async function startMoto(): Promise<MotoHandle> {
  if (process.env.MOTO_URL) return { url: process.env.MOTO_URL.replace(/\/+$/, ''), startedHere: false };
  const owner = `test-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const { stdout } = await run('bash', [SCRIPT, 'up'], {
      timeout: 600_000,
      maxBuffer: 10 * 1024 * 1024,
      env: { ...process.env, TQ_OWNER: owner },
    });
    const line = stdout.trim().split('\n').pop() ?? '';
    return { url: line.replace(/^MOTO_URL=/, ''), startedHere: recordedOwner() === owner, owner };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/moto.sh up failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Stops moto if this process started it (MOTO_KEEP=1 leaves it running for the next run). */
export async function stopMoto(h: MotoHandle | undefined): Promise<void> {
  if (!h?.startedHere || process.env.MOTO_KEEP === '1') return;
  await run('bash', [SCRIPT, 'down'], {
    timeout: 60_000,
    env: { ...process.env, ...(h.owner ? { TQ_OWNER: h.owner } : {}) },
  });
}

/** An IAM client on moto (any credentials are accepted). */
export function motoIam(url: string): IAMClient {
  return new IAMClient({
    region: 'us-east-1',
    endpoint: url,
    credentials: { accessKeyId: 'AKIAMOTOTESTKEY00000', secretAccessKey: 'moto-test-secret' },
    maxAttempts: 1,
  });
}

export interface AwsFixture {
  userName: string;
  userArn: string;
  accessKeyId: string;
  roleName: string;
  roleArn: string;
}

/** A user with an active access key and a console login profile, and a role; random names. */
export async function createAwsFixture(
  iam: IAMClient,
  opts: { loginProfile?: boolean } = {},
): Promise<AwsFixture> {
  const tag = randomBytes(4).toString('hex');
  const userName = `tq-user-${tag}`;
  const roleName = `tq-role-${tag}`;
  const user = await iam.send(new CreateUserCommand({ UserName: userName }));
  const key = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  if (opts.loginProfile !== false) {
    await iam.send(
      new CreateLoginProfileCommand({
        UserName: userName,
        Password: `Pw-${tag}-a1!`,
        PasswordResetRequired: false,
      }),
    );
  }
  const role = await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      MaxSessionDuration: 3600,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  return {
    userName,
    userArn: user.User!.Arn!,
    accessKeyId: key.AccessKey!.AccessKeyId!,
    roleName,
    roleArn: role.Role!.Arn!,
  };
}
