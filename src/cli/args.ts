/**
 * The few options our two commands take, parsed without a dependency: `--name value`,
 * `--name=value`, repeatable options, flags, and positional arguments.
 */
export interface ArgSpec {
  repeat?: string[];
  value?: string[];
  flag?: string[];
}

export interface Args {
  repeats: Map<string, string[]>;
  values: Map<string, string>;
  flags: Set<string>;
  positional: string[];
}

export function parseArgs(argv: string[], spec: ArgSpec): Args | { error: string } {
  const out: Args = { repeats: new Map(), values: new Map(), flags: new Set(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      out.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq >= 0 ? eq : undefined);
    const takesValue = spec.repeat?.includes(name) || spec.value?.includes(name);
    if (spec.flag?.includes(name)) {
      if (eq >= 0) return { error: `option --${name} takes no value` };
      out.flags.add(name);
      continue;
    }
    if (!takesValue) return { error: `unknown option --${name}` };
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) return { error: `option --${name} needs a value` };
    if (spec.repeat?.includes(name)) {
      const list = out.repeats.get(name) ?? [];
      list.push(value);
      out.repeats.set(name, list);
    } else {
      out.values.set(name, value);
    }
  }
  return out;
}
