/**
 * Resolves `${NAME}` and `${NAME:-default}` when a channel starts, so generated code keeps the
 * references (and secrets stay out of it) while one spec serves dev, test and prod.
 */
export function interpolate(template: string, env: NodeJS.ProcessEnv = process.env): string {
  return template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is not set and has no default`);
  });
}
