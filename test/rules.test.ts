/** Rules as data: a bad rule file is refused naming the rule; the summary equals an independent count. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadRules, evaluateRules, systemicFindings, RuleFileError } from '../stages/rules';
import { RULE_COLUMNS, loadConfig } from '../pipeline/config';
import { loadClassification } from '../stages/territory';
import { tmpDir, WE } from './helpers/store';

const base = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'config', 'rules.json'), 'utf8'));
function withRule(r: object): string {
  const f = path.join(tmpDir(), 'rules.json');
  fs.writeFileSync(f, JSON.stringify({ ...base, rules: [...base.rules, r] }));
  return f;
}
const rule = (over: object) => ({ id: 'X01_TEST', description: 'a test rule', severity: 'light', variables: ['sex'], condition: "d => d.sex !== ''", ...over });

describe('rule file', () => {
  test('the shipped rule file loads', () => {
    const { rules, scopeRules } = loadConfig();
    expect(rules.length).toBeGreaterThanOrEqual(27);
    expect(scopeRules.map((r) => r.scope_reason)).toEqual(['foreigner', 'from_abroad', 'departure_abroad', 'destination_km', 'same_settlement']);
  });
  test('unknown variable is refused naming the rule', () => {
    expect(() => loadRules(withRule(rule({ variables: ['sexx'], condition: "d => d.sexx !== ''" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition reads unknown variable 'sexx'/);
  });
  test('a variable not declared is refused', () => {
    expect(() => loadRules(withRule(rule({ condition: "d => d.birth_date !== ''" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition reads 'birth_date', which is not in its variables/);
  });
  test('a syntax error is refused naming the rule', () => {
    expect(() => loadRules(withRule(rule({ condition: 'd => d.sex !== (' })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition does not parse/);
  });
  test('a duplicate id is refused', () => {
    expect(() => loadRules(withRule(rule({ id: 'R01_REG_DATE_VALID' })), RULE_COLUMNS)).toThrow(RuleFileError);
    expect(() => loadRules(withRule(rule({ id: 'R01_REG_DATE_VALID' })), RULE_COLUMNS)).toThrow(/rule R01_REG_DATE_VALID: duplicate id/);
  });
  test('arbitrary code cannot run from a rule file', () => {
    expect(() => loadRules(withRule(rule({ condition: "d => process.exit(1)" })), RULE_COLUMNS)).toThrow(/does not parse/);
  });
  test('a schema violation (bad severity) is refused', () => {
    expect(() => loadRules(withRule(rule({ severity: 'medium' })), RULE_COLUMNS)).toThrow(/does not match schema rules/);
  });
});

describe('rule evaluation', () => {
  const C = loadClassification(path.join(WE, 'settlements.csv'));
  const cols = {
    form_type: ['R', 'R', 'D', 'R', 'R'],
    sex: ['1', '', '2', '', '2'],
    registration_date: ['2024-03-04', '2024-13-04', '2024-03-10', '2024-04-01', '2024-02-28'],
    to_municipality: ['70114', '80284', '', '12345', '70106'],
    file_month: ['2024-03', '2024-03', '2024-03', '2024-03', '2024-03'],
    registering_office: ['70114', '70114', '70114', '70106', '70106'],
  };
  const { rules } = loadConfig();
  const pick = (id: string) => rules.find((r) => r.id === id)!;
  test('summary equals an independent count', () => {
    const res = evaluateRules([pick('R20_SEX_PRESENT'), pick('R01_REG_DATE_VALID'), pick('R10_TO_MUNI_VALID'), pick('R04_REG_IN_FILE_MONTH')], cols, C);
    const byId = Object.fromEntries(res.map((r) => [r.rule.id, r.summary]));
    const sexFails = cols.sex.filter((s) => s === '').length;
    expect(byId.R20_SEX_PRESENT).toMatchObject({ items: 5, passes: 5 - sexFails, fails: sexFails, na: 0 });
    expect(byId.R01_REG_DATE_VALID).toMatchObject({ passes: 4, fails: 1, na: 0 });
    // 70114 valid; 80284 with an impossible date → NA; '' → NA; 12345 unknown → fail; 70106 valid
    expect(byId.R10_TO_MUNI_VALID).toMatchObject({ passes: 2, fails: 1, na: 2 });
    expect(byId.R04_REG_IN_FILE_MONTH).toMatchObject({ passes: 2, fails: 3 });
  });
  test('a rule failing for most of one office is escalated', () => {
    const res = evaluateRules([pick('R04_REG_IN_FILE_MONTH')], cols, C);
    expect(systemicFindings(res, cols.registering_office, 0.5, 2)).toEqual([{ rule: 'R04_REG_IN_FILE_MONTH', office: '70106', share: 1, items: 2 }]);
  });
});
