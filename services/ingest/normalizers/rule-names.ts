import type { DetectionKind } from '../../../schemas/detection.ts';

/**
 * SIEM rule names whose meaning is "many failed sign-ins (brute force, password spray, cracking),
 * then a success": credential abuse, whatever else the name says. Checked before the generic text
 * patterns (util.ts kindFromText), which would call some of them `other`. One row per pattern, with
 * the SIEM whose content ships it and an example rule name; docs/normalizers.md lists the table.
 */
export const CREDENTIAL_ABUSE_RULE_NAMES: ReadonlyArray<{ siem: string; pattern: RegExp; example: string }> =
  [
    {
      siem: 'splunk',
      pattern: /excessive[\s_-]*failed[\s_-]*log(in|on)s?/i,
      example: 'Access - Excessive Failed Logins - Rule',
    },
    {
      siem: 'splunk',
      pattern: /brute[\s_-]*force[\s_-]*access[\s_-]*behavio/i,
      example: 'Access - Brute Force Access Behavior Detected - Rule',
    },
    {
      siem: 'sentinel',
      pattern: /(failed|failure)[\s\S]*(followed[\s_-]*by|then|after)[\s\S]*success/i,
      example: 'Failed logon attempts followed by a successful logon',
    },
    {
      siem: 'sentinel',
      pattern: /success(ful)?[\s_-]*(log(on|in)|sign[\s_-]*in)[\s\S]*after[\s\S]*(fail|brute|spray)/i,
      example: 'Successful logon after multiple failed logons',
    },
    {
      siem: 'sentinel',
      pattern: /password[\s_-]*crack/i,
      example: 'Distributed Password cracking attempts in AzureAD',
    },
    {
      siem: 'elastic',
      pattern: /multiple[\s_-]*log(on|in)[\s_-]*failures?[\s\S]*success/i,
      example: 'Multiple Logon Failure Followed by Logon Success',
    },
    {
      siem: 'chronicle',
      pattern: /(brute[\s_-]*force|password[\s_-]*spray)[\s\S]*success/i,
      example: 'o365_brute_force_success',
    },
  ];

/** The kind a rule name means by the table above, or undefined. */
export function kindFromRuleName(...names: Array<string | undefined>): DetectionKind | undefined {
  for (const name of names) {
    if (name === undefined) continue;
    for (const row of CREDENTIAL_ABUSE_RULE_NAMES) if (row.pattern.test(name)) return 'credential_abuse';
  }
  return undefined;
}
