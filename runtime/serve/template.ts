/** Fills `{name}` placeholders (file-name templates); unknown names stay as written. */
export function interpolateTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, key: string) => (key in values ? values[key]!.replace(/[^A-Za-z0-9._-]/g, '_') : whole));
}
