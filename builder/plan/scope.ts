/**
 * The variables a Dockerfile instruction can see: the environment (the base image's Env plus
 * ENV) and the build ARGs declared in the stage. As in BuildKit, whichever of ENV and ARG
 * defines a name last wins for word expansion and RUN, while only ENV reaches the image config.
 * Values are immutable; every change returns a new scope.
 */
export class Scope {
  private constructor(
    /** The image config's environment. */
    readonly env: ReadonlyMap<string, string>,
    /** Every variable in effect, ENV and ARG alike, the latest definition of a name winning. */
    readonly variables: ReadonlyMap<string, string>,
    /** The names whose latest definition is an ARG. */
    readonly argNames: ReadonlySet<string> = new Set(),
  ) {}

  static fromEnvList(env: readonly string[] | undefined): Scope {
    const map = new Map<string, string>();
    for (const pair of env ?? []) {
      const eq = pair.indexOf('=');
      if (eq > 0) map.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return new Scope(map, new Map(map));
  }

  withArg(name: string, value: string): Scope {
    return new Scope(this.env, new Map(this.variables).set(name, value), new Set(this.argNames).add(name));
  }

  withEnv(name: string, value: string): Scope {
    const argNames = new Set(this.argNames);
    argNames.delete(name);
    return new Scope(new Map(this.env).set(name, value), new Map(this.variables).set(name, value), argNames);
  }

  /** The variables for word expansion. */
  expansionVariables(): Map<string, string> {
    return new Map(this.variables);
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
