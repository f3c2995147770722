/** Rules as data: a bad rule file is refused naming the rule; the summary equals an independent count. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadRules, evaluateRules, systemicFindings, RuleFileError } from '../stages/rules';
import { RULE_COLUMNS, loadConfig } from '../pipeline/config';
import { loadClassification } from '../stages/territory';
import { assertScopeEvaluated } from '../stages/month';
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

describe('a statistician\'s bad edit is refused at load, naming the file (review of 26 Nov)', () => {
  test('a rule not written d => <expression> (another parameter escapes the variables check; a block is no expression)', () => {
    expect(() => loadRules(withRule(rule({ condition: "r => r.nationality !== ''" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition must be written d => <expression> \(the parameter named d, no block\)/);
    expect(() => loadRules(withRule(rule({ condition: "d => { return d.sex !== '' }" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition must be written d => <expression>/);
    expect(() => loadRules(withRule(rule({ when: "x => x.sex !== ''" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: when must be written d => <expression>/);
  });

  test('a rule may not call the clock or a random number (runs must be reproducible)', () => {
    expect(() => loadRules(withRule(rule({ condition: "d => d.sex !== '' && op.random() < 2" })), RULE_COLUMNS)).toThrow(/rule X01_TEST: condition calls op\.random\(\), which gives another result on each run/);
    expect(() => loadRules(withRule(rule({ when: 'd => op.now() > 0' })), RULE_COLUMNS)).toThrow(/rule X01_TEST: when calls op\.now\(\)/);
  });

  test('a condition giving something else than true/false/null is an error of that rule, not "not applicable" everywhere', () => {
    const C = loadClassification(path.join(WE, 'settlements.csv'));
    const cols = { form_type: ['R', 'R'], sex: ['1', ''], birth_date: ['1990-01-01', ''], registration_date: ['2024-03-01', '2024-03-01'] };
    const amp = rule({ variables: ['sex', 'birth_date'], condition: "d => d.sex !== '' & d.birth_date !== ''" });
    const [r] = evaluateRules([amp as never], cols, C);
    expect(r!.summary).toMatchObject({ passes: 0, fails: 0, na: 2, error: 'the condition gives number 1, not true, false or null (& where && was meant?)' });
    const [w] = evaluateRules([rule({ when: "d => d.sex !== '' & true" }) as never], cols, C);
    expect(w!.summary.error).toBe('the when gives number 1, not true, false or null (& where && was meant?)');
    // a scope rule that cannot be evaluated stops the month (it decides who is counted)
    const scope = evaluateRules([rule({ id: 'S09_TEST', scope_reason: 'test', condition: "d => d.sex !== '' & true" }) as never], cols, C);
    expect(() => assertScopeEvaluated(scope)).toThrow("scope rule S09_TEST cannot be evaluated (the condition gives number 1, not true, false or null (& where && was meant?)): the month's scope cannot be decided; correct it in the rule file");
    const [ok] = evaluateRules([rule({}) as never], cols, C);
    expect(ok!.summary).toMatchObject({ passes: 1, fails: 1, na: 0 });
    expect(ok!.summary.error).toBeUndefined();
  });

  test('configuration files: the catch-all class, trigger rules, correction ids, class size, all four variables, a missing file', () => {
    const dir = tmpDir();
    const cfg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'config', 'migstat.json'), 'utf8'));
    const abs = (f: string): string => path.join(__dirname, '..', f);
    const write = (name: string, v: unknown): string => { const f = path.join(dir, name); fs.writeFileSync(f, JSON.stringify(v)); return f; };
    const imp = JSON.parse(fs.readFileSync(abs(cfg.imputation_file), 'utf8'));
    const sc = JSON.parse(fs.readFileSync(abs(cfg.systemic_corrections_file), 'utf8'));
    const load = (over: object): unknown => loadConfig(write('migstat.json', { ...cfg, rules_file: abs(cfg.rules_file), imputation_file: abs(cfg.imputation_file), systemic_corrections_file: abs(cfg.systemic_corrections_file), ...over }));
    expect(load({})).toBeDefined();
    const impF = write('imputation.json', { ...imp, classes: imp.classes.filter((c: string[]) => c.length) });
    expect(() => load({ imputation_file: impF })).toThrow(`${impF}: classes must end with [] (the class of every recipient)`);
    expect(() => load({ imputation_file: write('imp2.json', { ...imp, classes: [['sex', 'age_group', 'to_area', 'to_region', 'to_municipality'], []] }) })).toThrow(/imp2\.json: does not match schema imputation: \/classes\/0 must NOT have more than 4 items/);
    expect(() => load({ imputation_file: write('imp3.json', { ...imp, variables: ['sex'] }) })).toThrow(/imp3\.json: does not match schema imputation: \/variables must NOT have fewer than 4 items/);
    const trig = write('sc1.json', { ...sc, corrections: [{ ...sc.corrections[0], trigger_rule: 'R4_NO_SUCH' }] });
    expect(() => load({ systemic_corrections_file: trig })).toThrow(new RegExp(`^${trig.replace(/[.\\/]/g, '\\$&')}: correction \\S+: trigger_rule R4_NO_SUCH is not a rule of `));
    const twice = write('sc2.json', { ...sc, corrections: [sc.corrections[0], sc.corrections[0]] });
    expect(() => load({ systemic_corrections_file: twice })).toThrow(`${twice}: correction ${sc.corrections[0].id}: id used twice`);
    expect(() => load({ rules_file: path.join(dir, 'no-such-rules.json') })).toThrow(`${path.join(dir, 'no-such-rules.json')}: file not found`);
  });
});
