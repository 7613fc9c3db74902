/**
 * The variables a Dockerfile instruction can see: build ARGs declared in the stage, and the
 * environment (the base image's Env plus ENV). ENV wins over ARG. Values are immutable; every
 * change returns a new scope.
 */
export class Scope {
  private constructor(
    readonly args: ReadonlyMap<string, string>,
    readonly env: ReadonlyMap<string, string>,
  ) {}

  static fromEnvList(env: readonly string[] | undefined): Scope {
    const map = new Map<string, string>();
    for (const pair of env ?? []) {
      const eq = pair.indexOf('=');
      if (eq > 0) map.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return new Scope(new Map(), map);
  }

  withArg(name: string, value: string): Scope {
    return new Scope(new Map(this.args).set(name, value), this.env);
  }

  withEnv(name: string, value: string): Scope {
    return new Scope(this.args, new Map(this.env).set(name, value));
  }

  /** The variables for word expansion: ARGs overlaid by ENV. */
  expansionVariables(): Map<string, string> {
    return new Map([...this.args, ...this.env]);
  }

  /** The environment in `KEY=value` form, in the order the keys were first set (Docker's Env order). */
  envList(): string[] {
    return [...this.env].map(([k, v]) => `${k}=${v}`);
  }
}
