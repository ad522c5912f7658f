/**
 * The constants of a generated channel module: what the spec fixes (HL7 and JSON paths, lookup
 * tables, value lists, patterns) is parsed or built once, when the module loads, so handling a
 * message is direct calls on ready values. Each is named for what it holds (`PID_5_1`), and
 * one value used twice is one constant.
 */
export class ModuleConstants {
  private readonly byValue = new Map<string, string>();
  /** `JSON` would hide the global the generated code may use. */
  private readonly names = new Set<string>(['JSON']);
  private readonly declarations: string[] = [];

  /** The constant holding `init` (TypeScript source), declared on first use under a name made from `hint`. */
  add(hint: string, init: string): string {
    const known = this.byValue.get(init);
    if (known) return known;
    const base = constantName(hint);
    let name = base;
    for (let n = 2; this.names.has(name); n++) name = `${base}_${n}`;
    this.names.add(name);
    this.byValue.set(init, name);
    this.declarations.push(`const ${name} = ${init};`);
    return name;
  }

  /** The declarations in order of first use. */
  get statements(): readonly string[] {
    return this.declarations;
  }
}

/** `PID-3.4.1` → `PID_3_4_1`, `patient.mrn` → `PATIENT_MRN`: upper case, anything else an underscore. */
export function constantName(hint: string): string {
  const name = hint.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  if (name === '') return 'VALUE';
  return /^[0-9]/.test(name) ? `_${name}` : name;
}
