const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Fills `${NAME}` and `${NAME:-default}` from the environment; an unset name without a default
 * is handed to `unset`, whose answer takes its place. Shared by spec validation (which reports
 * it) and running channels (which refuse to start).
 */
export function replaceEnvReferences(template: string, env: NodeJS.ProcessEnv, unset: (name: string) => string): string {
  return template.replace(ENV_REFERENCE, (_m, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    return fallback ?? unset(name);
  });
}

/**
 * Resolves `${NAME}` and `${NAME:-default}` when a channel starts, so generated code keeps the
 * references (and secrets stay out of it) while one spec serves dev, test and prod.
 */
export function interpolate(template: string, env: NodeJS.ProcessEnv = process.env): string {
  return replaceEnvReferences(template, env, (name) => {
    throw new Error(`environment variable ${name} is not set and has no default`);
  });
}
