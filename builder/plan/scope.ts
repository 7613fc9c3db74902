/**
 * The variables a Dockerfile instruction can see: the environment (the base image's Env plus
 * ENV) and the build ARGs declared in the stage. As in BuildKit, whichever of ENV and ARG
 * defines a name last wins for word expansion and RUN, while only ENV reaches the image config.
 * A scope belongs to the stage being planned and changes in place, so each ARG or ENV costs only
 * its own size; a stage built on another starts from a `copy()`.
 */
export class Scope {
  private constructor(
    /** The image config's environment. */
    private readonly env: Map<string, string>,
    /** Every variable in effect, ENV and ARG alike, the latest definition of a name winning. */
    private readonly variables: Map<string, string>,
    /** The names whose latest definition is an ARG. */
    private readonly args: Set<string> = new Set(),
  ) {}

  static fromEnvList(env: readonly string[] | undefined): Scope {
    const map = new Map<string, string>();
    for (const pair of env ?? []) {
      const eq = pair.indexOf('=');
      if (eq > 0) map.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return new Scope(map, new Map(map));
  }

  copy(): Scope {
    return new Scope(new Map(this.env), new Map(this.variables), new Set(this.args));
  }

  setArg(name: string, value: string): void {
    this.variables.set(name, value);
    this.args.add(name);
  }

  setEnv(name: string, value: string): void {
    this.env.set(name, value);
    this.variables.set(name, value);
    this.args.delete(name);
  }

  /** The variables for word expansion, as they are now. */
  expansionVariables(): ReadonlyMap<string, string> {
    return this.variables;
  }

  /** The names whose latest definition is an ARG, sorted. */
  argNames(): string[] {
    return [...this.args].sort();
  }

  /** The environment in `KEY=value` form, in the order the keys were first set (Docker's Env order). */
  envList(): string[] {
    return [...this.env].map(([k, v]) => `${k}=${v}`);
  }

  /** What RUN sees: every variable in effect, in `KEY=value` form. */
  runEnvList(): string[] {
    return [...this.variables].map(([k, v]) => `${k}=${v}`);
  }
}
