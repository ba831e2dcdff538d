// A small JSON Schema validator for the structured-output tests: type (incl. integer), enum,
// const, properties, required, additionalProperties false, items, minItems/maxItems,
// minLength/maxLength. Returns a list of problems (empty: valid).
export function validate(schema, value, where = "$") {
  const problems = [];
  const typeOf = (v) =>
    v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;
  if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    problems.push(`${where}: expected const ${JSON.stringify(schema.const)}`);
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    problems.push(`${where}: ${JSON.stringify(value)} not in enum`);
  }
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    const ok = types.some((ty) => ty === t || (ty === "number" && t === "integer"));
    if (!ok) {
      problems.push(`${where}: expected ${types.join("|")}, got ${t}`);
      return problems;
    }
  }
  if (typeOf(value) === "object") {
    for (const r of schema.required || []) {
      if (!(r in value)) problems.push(`${where}: missing ${r}`);
    }
    for (const [k, v] of Object.entries(value)) {
      const sub = schema.properties?.[k];
      if (sub) problems.push(...validate(sub, v, `${where}.${k}`));
      else if (schema.additionalProperties === false) problems.push(`${where}: unexpected ${k}`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      problems.push(`${where}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      problems.push(`${where}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => problems.push(...validate(schema.items, v, `${where}[${i}]`)));
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && [...value].length < schema.minLength)
      problems.push(`${where}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength)
      problems.push(`${where}: longer than ${schema.maxLength}`);
  }
  return problems;
}
