/**
 * From policy-set documents to resolved policies: parse each document with the
 * YAML limits, check it against its schema, then for each Policy apply its
 * template chain (parameters substituted), its own gates as overrides, tier
 * overlays and fast-tracks. Every override must be at least as strict as the
 * gate it replaces unless it is marked `loosen: { reason }`; marked ones are
 * reported as warnings and recorded in the resolved policy.
 *
 * Pure: documents come in as text, problems go out located as file:line:col.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical.ts';
import { checkYamlValue, keyPositionOf, parseYamlValue, positionOf, DEFAULT_YAML_LIMITS, type ParsedYaml, type SourceProblem, type YamlLimits } from '../yaml.ts';
import { freezeProblems } from './freeze.ts';
import {
  DocumentHeaderSchema,
  DurationSchema,
  GateSchema,
  GateSourceSchema,
  PolicyDocSchema,
  PolicyTestDocSchema,
  RESERVED_GATE_NAMES,
  TemplateDocSchema,
  gateKindOf,
  withDefaults,
  type ApproverSpec,
  type Gate,
  type GateSource,
  type ParameterSpec,
  type PolicyDoc,
  type PolicyTestDoc,
  type TemplateDoc,
} from './schema.ts';
import { loosenings } from './tighten.ts';
import { parseDuration } from '../time.ts';

export interface PolicySource {
  /** Path relative to the policy-set root, with forward slashes. */
  path: string;
  text: string;
}

export type NamedGate = Gate & { name: string };

export interface ResolvedFastTrack {
  description?: string;
  identities?: string[];
  teams?: string[];
  relax: string[];
}

export interface Loosening {
  /** `gates`, `tiers.<tier>` or `fastTrack`. */
  scope: string;
  gate: string;
  changes: string[];
  reason: string;
}

/** A policy after templates, parameters, overrides and tiers: what the engine evaluates and what gets signed. */
export interface ResolvedPolicy {
  name: string;
  description?: string;
  /** The template chain, nearest first, with the parameters each was given. */
  extends: { template: string; with: Record<string, unknown> }[];
  /** Parameters visible to CEL as `params`. */
  params: Record<string, unknown>;
  tierLabel: string;
  unknownTier: 'deny' | 'base';
  /** In the order they were written (templates first): signed JSON sorts keys, lists keep order. */
  gates: NamedGate[];
  tiers: Record<string, { description?: string; gates: NamedGate[] }>;
  fastTrack: Record<string, ResolvedFastTrack>;
  exceptions: { maxDuration: string; approvers: ApproverSpec[] };
  loosened: Loosening[];
}

/** Where a gate's text lives, for locating later problems (CEL compile errors). */
export interface GateOrigin {
  file: string;
  parsed: Pick<ParsedYaml<unknown>, 'doc' | 'lines'>;
  path: (string | number)[];
}

export interface ParsedTest {
  file: string;
  parsed: Pick<ParsedYaml<unknown>, 'doc' | 'lines'>;
  doc: PolicyTestDoc;
}

export interface ResolveResult {
  policies: Record<string, ResolvedPolicy>;
  /** `<policy>/<scope>/<gate>` → where its CEL was written; with `#gate`, where the gate was. */
  origins: Map<string, GateOrigin>;
  tests: ParsedTest[];
  problems: SourceProblem[];
  warnings: SourceProblem[];
  sources: { path: string; sha256: string }[];
}

const PLACEHOLDER = /\$\{\{\s*params\.([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\$\{\{\s*params\.([A-Za-z][A-Za-z0-9_]*)\s*\}\}$/;
const CEL_FIELDS = new Set(['where', 'expr']);
const MAX_CHAIN = 8;
export const KNOWN_PREDICATE_TYPES: readonly string[] = [
  'https://slsa.dev/provenance/v1',
  'https://slsa.dev/provenance/v0.2',
  'https://slsa.dev/verification_summary/v1',
  'https://in-toto.io/attestation/test-result/v0.1',
  'https://in-toto.io/attestation/vulns/v0.1',
  'https://in-toto.io/attestation/link/v0.3',
  'https://in-toto.io/attestation/release/v0.1',
  'https://in-toto.io/attestation/reference/v0.1',
  'https://in-toto.io/attestation/runtime-trace/v0.1',
  'https://in-toto.io/attestation/scai/attribute-report/v0.2',
  'https://spdx.dev/Document',
  'https://spdx.dev/Document/v2.3',
  'https://cyclonedx.org/bom',
  'https://cyclonedx.org/bom/v1.5',
  'https://cyclonedx.org/bom/v1.6',
  'https://cosign.sigstore.dev/attestation/v1',
  'https://cosign.sigstore.dev/attestation/vuln/v1',
];

interface Loaded<T> {
  file: string;
  parsed: ParsedYaml<unknown>;
  doc: T;
}

interface Entry {
  /** The merged source, checked in full at the end. */
  source: GateSource;
  origin: GateOrigin;
  celOrigin?: GateOrigin;
}

interface Layer {
  gates: Map<string, Entry>;
  /** Tier overlays: partial sources, applied on the final base gates. */
  tiers: Map<string, { description?: string; gates: Map<string, Entry> }>;
  fastTrack: Map<string, { value: ResolvedFastTrack; origin: GateOrigin }>;
  tierLabel: string;
  unknownTier: 'deny' | 'base';
  exceptions: { maxDuration: string; approvers: ApproverSpec[] };
  params: Record<string, unknown>;
  chain: { template: string; with: Record<string, unknown> }[];
  loosened: Loosening[];
}

export interface ResolveOptions {
  yamlLimits?: YamlLimits;
}

/** Parses, checks and resolves a whole policy set. Never throws for bad input: everything is a located problem. */
export function resolvePolicySet(sources: readonly PolicySource[], options: ResolveOptions = {}): ResolveResult {
  const limits = options.yamlLimits ?? DEFAULT_YAML_LIMITS;
  const problems: SourceProblem[] = [];
  const warnings: SourceProblem[] = [];
  const policies = new Map<string, Loaded<PolicyDoc>>();
  const templates = new Map<string, Loaded<TemplateDoc>>();
  const tests: ParsedTest[] = [];
  const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  for (const src of sorted) {
    const raw = parseYamlValue(src.text, src.path, limits);
    if ('problems' in raw) {
      problems.push(...raw.problems);
      continue;
    }
    const header = checkYamlValue(raw, DocumentHeaderSchema, src.path);
    if ('problems' in header) {
      problems.push(...header.problems);
      continue;
    }
    const at = (path: (string | number)[]) => ({ file: src.path, ...positionOf(raw, path), path: path.join('.') });
    if (header.value.kind === 'PolicyTest') {
      const t = checkYamlValue(raw, PolicyTestDocSchema, src.path);
      if ('problems' in t) problems.push(...t.problems);
      else tests.push({ file: src.path, parsed: raw, doc: t.value });
      continue;
    }
    if (header.value.kind === 'Template') {
      const placeholderProblems = findPlaceholders(raw.value, [], true).map((p) => ({ ...at(p.path), message: p.message }));
      problems.push(...placeholderProblems);
      const declared = (raw.value as { parameters?: Record<string, ParameterSpec> }).parameters ?? {};
      const sampled = substitute(raw.value, sampleParams(declared), true);
      const t = checkYamlValue(raw, TemplateDocSchema, src.path, [], sampled.value);
      if ('problems' in t) {
        problems.push(...t.problems);
        continue;
      }
      for (const used of sampled.used) {
        if (!Object.hasOwn(declared, used.name)) problems.push({ ...at(used.path), message: `${used.path.join('.')}: parameter "${used.name}" is not declared under parameters` });
      }
      for (const [name, spec] of Object.entries(t.value.parameters ?? {})) {
        if (spec.default !== undefined) {
          const why = paramTypeProblem(spec, spec.default);
          if (why) problems.push({ ...at(['parameters', name, 'default']), message: `parameters.${name}.default: ${why}` });
        }
      }
      if (templates.has(t.value.name)) problems.push({ ...at(['name']), message: `template "${t.value.name}" is defined twice (also in ${templates.get(t.value.name)?.file ?? '?'})` });
      else templates.set(t.value.name, { file: src.path, parsed: raw, doc: t.value });
      continue;
    }
    const placeholders = findPlaceholders(raw.value, [], false);
    for (const p of placeholders) problems.push({ ...at(p.path), message: `${p.path.join('.')}: only templates take parameters (\${{ params.… }})` });
    const p = checkYamlValue(raw, PolicyDocSchema, src.path);
    if ('problems' in p) {
      problems.push(...p.problems);
      continue;
    }
    if (policies.has(p.value.name)) problems.push({ ...at(['name']), message: `policy "${p.value.name}" is defined twice (also in ${policies.get(p.value.name)?.file ?? '?'})` });
    else policies.set(p.value.name, { file: src.path, parsed: raw, doc: p.value });
  }

  const resolved: Record<string, ResolvedPolicy> = {};
  const origins = new Map<string, GateOrigin>();
  for (const [name, loaded] of [...policies.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const before = problems.length;
    const layer = resolveLayer(loaded, {}, templates, problems, warnings, [], 0);
    if (!layer || problems.length > before) continue;
    const policy = finish(name, loaded, layer, problems, warnings, origins);
    if (policy && problems.length === before) resolved[name] = policy;
  }
  return {
    policies: resolved,
    origins,
    tests,
    problems,
    warnings,
    sources: sorted.map((s) => ({ path: s.path, sha256: createHash('sha256').update(s.text).digest('hex') })),
  };
}

/** sha256 of the canonical JSON of a resolved policy: the policy digest in decisions and receipts. */
export function policyDigest(p: ResolvedPolicy): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(canonicalJson(p)).digest('hex')}`;
}

// ---------------------------------------------------------------- layers

function resolveLayer(
  loaded: Loaded<PolicyDoc | TemplateDoc>,
  params: Record<string, unknown>,
  templates: ReadonlyMap<string, Loaded<TemplateDoc>>,
  problems: SourceProblem[],
  warnings: SourceProblem[],
  seen: readonly string[],
  depth: number,
): Layer | undefined {
  const { file, parsed } = loaded;
  const at = (path: (string | number)[], message: string): SourceProblem => ({ file, ...positionOf(parsed, path), path: path.join('.'), message });
  const atKey = (path: (string | number)[], message: string): SourceProblem => ({ file, ...keyPositionOf(parsed, path), path: path.join('.'), message });
  // Substitute this document's own parameters (templates only), then re-check it with real values.
  let doc = loaded.doc;
  if (doc.kind === 'Template') {
    const sub = substitute(parsed.value, params, false);
    const checked = checkYamlValue(parsed, TemplateDocSchema, file, [], sub.value);
    if ('problems' in checked) {
      problems.push(...checked.problems.map((p) => ({ ...p, message: `${p.message} (with the parameters given by ${seen.at(-1) ?? 'the policy'})` })));
      return undefined;
    }
    doc = checked.value;
  }

  let base: Layer;
  if (doc.extends) {
    const name = doc.extends.template;
    const template = templates.get(name);
    if (!template) {
      problems.push(at(['extends', 'template'], `extends.template: no template named "${name}"${templates.size ? ` (have ${[...templates.keys()].join(', ')})` : ''}`));
      return undefined;
    }
    if (seen.includes(name) || depth >= MAX_CHAIN) {
      problems.push(at(['extends', 'template'], `extends.template: templates extend each other in a cycle or deeper than ${MAX_CHAIN} (${[...seen, name].join(' → ')})`));
      return undefined;
    }
    const given = doc.extends.with ?? {};
    const declared = template.doc.parameters ?? {};
    const values: Record<string, unknown> = {};
    let bad = false;
    for (const [k, v] of Object.entries(given)) {
      const spec = declared[k];
      if (!spec) {
        problems.push(at(['extends', 'with', k], `extends.with.${k}: template "${name}" has no parameter "${k}"${Object.keys(declared).length ? ` (it has ${Object.keys(declared).join(', ')})` : ''}`));
        bad = true;
        continue;
      }
      const why = paramTypeProblem(spec, v);
      if (why) {
        problems.push(at(['extends', 'with', k], `extends.with.${k}: ${why}`));
        bad = true;
      }
      values[k] = v;
    }
    for (const [k, spec] of Object.entries(declared)) {
      if (values[k] !== undefined) continue;
      if (spec.default === undefined) {
        problems.push(at(['extends', 'with'], `extends.with: template "${name}" needs parameter "${k}"`));
        bad = true;
      } else values[k] = spec.default;
    }
    if (bad) return undefined;
    const inner = resolveLayer(template, values, templates, problems, warnings, [...seen, loaded.doc.name], depth + 1);
    if (!inner) return undefined;
    base = { ...inner, params: { ...inner.params, ...values }, chain: [{ template: name, with: values }, ...inner.chain] };
  } else {
    base = {
      gates: new Map(),
      tiers: new Map(),
      fastTrack: new Map(),
      tierLabel: 'tier',
      unknownTier: 'deny',
      exceptions: { maxDuration: '30d', approvers: [{ role: 'approver' }] },
      params: {},
      chain: [],
      loosened: [],
    };
  }
  const inherited = doc.extends !== undefined;
  const loosened = [...base.loosened];
  const gates = mergeGates(base.gates, doc.gates ?? {}, { file, parsed, path: ['gates'] }, 'gates', inherited, problems, warnings, loosened);

  const tiers = new Map(base.tiers);
  for (const [tier, t] of Object.entries(doc.tiers ?? {})) {
    const prev = tiers.get(tier);
    const overlay = new Map(prev?.gates ?? []);
    for (const [g, src] of Object.entries(t.gates)) {
      const origin: GateOrigin = { file, parsed, path: ['tiers', tier, 'gates', g] };
      const old = overlay.get(g);
      overlay.set(g, old ? { source: mergeSource(old.source, src), origin, ...celOriginOf(src, origin, old) } : { source: src, origin, ...celOriginOf(src, origin, undefined) });
    }
    const description = t.description ?? prev?.description;
    tiers.set(tier, { ...(description === undefined ? {} : { description }), gates: overlay });
  }

  const fastTrack = new Map(base.fastTrack);
  for (const [name, f] of Object.entries(doc.fastTrack ?? {})) {
    const origin: GateOrigin = { file, parsed, path: ['fastTrack', name] };
    const value: ResolvedFastTrack = {
      ...(f.description === undefined ? {} : { description: f.description }),
      ...(f.identities === undefined ? {} : { identities: f.identities }),
      ...(f.teams === undefined ? {} : { teams: f.teams }),
      relax: f.relax,
    };
    const relaxesInherited = inherited ? f.relax.filter((g) => base.gates.has(g) || [...base.tiers.values()].some((t) => t.gates.has(g))) : [];
    if (relaxesInherited.length > 0) {
      const changes = [`fast-track ${name} relaxes inherited gates ${relaxesInherited.join(', ')}`];
      if (!f.loosen) problems.push(atKey(['fastTrack', name], `fastTrack.${name}: ${changes[0]}; mark it with loosen: { reason: … } if that is intended`));
      else {
        warnings.push(atKey(['fastTrack', name], `fastTrack.${name}: loosened: ${changes[0]} (${f.loosen.reason})`));
        loosened.push({ scope: 'fastTrack', gate: name, changes, reason: f.loosen.reason });
      }
    }
    fastTrack.set(name, { value, origin });
  }

  let exceptions = base.exceptions;
  if (doc.exceptions) {
    const next = { maxDuration: doc.exceptions.maxDuration ?? base.exceptions.maxDuration, approvers: doc.exceptions.approvers ?? base.exceptions.approvers };
    if (inherited && parseDuration(next.maxDuration) > parseDuration(base.exceptions.maxDuration)) {
      problems.push(at(['exceptions', 'maxDuration'], `exceptions.maxDuration: may only shrink in an extending policy (inherited ${base.exceptions.maxDuration})`));
    }
    const old = new Set(base.exceptions.approvers.map((a) => canonicalJson(a)));
    if (inherited && doc.exceptions.approvers?.some((a) => !old.has(canonicalJson(a)))) {
      problems.push(at(['exceptions', 'approvers'], 'exceptions.approvers: an extending policy may only narrow who approves exceptions'));
    }
    exceptions = next;
  }
  const unknownTier = doc.unknownTier ?? base.unknownTier;
  if (inherited && base.unknownTier === 'deny' && unknownTier === 'base') {
    warnings.push(atKey(['unknownTier'], 'unknownTier: loosened from deny to base: artifacts with an unknown tier get the base gates'));
    loosened.push({ scope: 'policy', gate: 'unknownTier', changes: ['unknown tiers get the base gates instead of being denied'], reason: 'unknownTier: base' });
  }

  return { ...base, gates, tiers, fastTrack, tierLabel: doc.tierLabel ?? base.tierLabel, unknownTier, exceptions, loosened };
}

function celOriginOf(src: GateSource, origin: GateOrigin, old: Entry | undefined): { celOrigin?: GateOrigin } {
  const kind = gateKindOf(src);
  if (kind === 'require' && src.require?.where !== undefined) return { celOrigin: { ...origin, path: [...origin.path, 'require', 'where'] } };
  if (kind === 'rule' && src.rule?.expr !== undefined) return { celOrigin: { ...origin, path: [...origin.path, 'rule', 'expr'] } };
  return old?.celOrigin ? { celOrigin: old.celOrigin } : {};
}

/** Field-wise merge of one gate's override onto what it overrides; arrays are replaced, not appended. */
function mergeSource(base: GateSource, over: GateSource): GateSource {
  const bk = gateKindOf(base);
  const ok = gateKindOf(over);
  if (over.remove) return over;
  if (!bk || !ok || bk !== ok) return over;
  const merged = { ...(base[bk] as object), ...(over[ok] as object) };
  const description = over.description ?? base.description;
  return { ...(description === undefined ? {} : { description }), [bk]: merged };
}

function mergeGates(
  base: ReadonlyMap<string, Entry>,
  overlay: Record<string, GateSource>,
  where: GateOrigin,
  scope: string,
  inherited: boolean,
  problems: SourceProblem[],
  warnings: SourceProblem[],
  loosened: Loosening[],
): Map<string, Entry> {
  const out = new Map(base);
  for (const [name, src] of Object.entries(overlay)) {
    const origin: GateOrigin = { ...where, path: [...where.path, name] };
    const at = (message: string): SourceProblem => ({ file: origin.file, ...keyPositionOf(origin.parsed, origin.path), path: origin.path.join('.'), message });
    if ((RESERVED_GATE_NAMES as readonly string[]).includes(name)) {
      problems.push(at(`${origin.path.join('.')}: "${name}" is reserved for the engine's own gate`));
      continue;
    }
    const old = out.get(name);
    if (src.remove) {
      if (!old) {
        problems.push(at(`${origin.path.join('.')}: removes a gate that nothing defines`));
        continue;
      }
      const changes = ['gate removed'];
      if (!src.loosen) problems.push(at(`${origin.path.join('.')}: removing an inherited gate loosens the policy; mark it with loosen: { reason: … } if that is intended`));
      else {
        warnings.push(at(`${origin.path.join('.')}: loosened: gate removed (${src.loosen.reason})`));
        loosened.push({ scope, gate: name, changes, reason: src.loosen.reason });
      }
      out.delete(name);
      continue;
    }
    if (!old) {
      out.set(name, { source: src, origin, ...celOriginOf(src, origin, undefined) });
      continue;
    }
    const merged = mergeSource(old.source, src);
    const entry: Entry = { source: merged, origin, ...celOriginOf(src, origin, old) };
    out.set(name, entry);
    if (!inherited) continue;
    const before = fullGate(old.source);
    const after = fullGate(merged);
    if (!before || !after) continue; // reported when the policy is finished
    const changes = loosenings(before, after);
    if (changes.length === 0) continue;
    if (!src.loosen) {
      problems.push(at(`${origin.path.join('.')}: loosens inherited gate "${name}": ${changes.join('; ')}. Mark it with loosen: { reason: … } if that is intended`));
    } else {
      warnings.push(at(`${origin.path.join('.')}: loosened: ${changes.join('; ')} (${src.loosen.reason})`));
      loosened.push({ scope, gate: name, changes, reason: src.loosen.reason });
    }
  }
  return out;
}

function fullGate(src: GateSource): Gate | undefined {
  const { loosen: _loosen, remove: _remove, ...rest } = src;
  const r = GateSchema.safeParse(rest);
  return r.success ? withDefaults(r.data) : undefined;
}

function finish(name: string, loaded: Loaded<PolicyDoc>, layer: Layer, problems: SourceProblem[], warnings: SourceProblem[], origins: Map<string, GateOrigin>): ResolvedPolicy | undefined {
  const before = problems.length;
  const check = (entries: ReadonlyMap<string, Entry>, scope: string): NamedGate[] => {
    const out: NamedGate[] = [];
    for (const [g, e] of entries) {
      const { loosen: _loosen, remove: _remove, ...rest } = e.source;
      const r = checkYamlValue(e.origin.parsed as ParsedYaml<unknown>, GateSchema, e.origin.file, e.origin.path, rest);
      if ('problems' in r) {
        problems.push(...r.problems.map((p) => ({ ...p, message: `${p.message} (gate "${g}" of policy "${name}" as resolved)` })));
        continue;
      }
      const gate = withDefaults(r.value);
      if (gate.kind === 'freeze') {
        for (const fp of freezeProblems(r.value.freeze ?? gate.freeze)) {
          const path = [...e.origin.path, 'freeze', ...fp.path];
          problems.push({ file: e.origin.file, ...positionOf(e.origin.parsed, path), path: path.join('.'), message: `${path.join('.')}: ${fp.message}` });
        }
      }
      out.push({ name: g, ...gate });
      origins.set(`${name}/${scope}/${g}#gate`, e.origin);
      if (e.celOrigin) origins.set(`${name}/${scope}/${g}`, e.celOrigin);
    }
    return out;
  };
  const gates = check(layer.gates, 'gates');
  const tiers: ResolvedPolicy['tiers'] = {};
  const loosened = [...layer.loosened];
  for (const [tier, t] of [...layer.tiers.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const scratch: SourceProblem[] = [];
    const scratchWarnings: SourceProblem[] = [];
    const effective = mergeGates(layer.gates, Object.fromEntries([...t.gates].map(([g, e]) => [g, e.source])), { file: '', parsed: loaded.parsed, path: [] }, `tiers.${tier}`, true, scratch, scratchWarnings, loosened);
    // Re-point each tier gate at where it was written, so problems land on the right line.
    for (const [g, e] of t.gates) {
      const merged = effective.get(g);
      if (merged) effective.set(g, { ...merged, origin: e.origin, ...(e.celOrigin ? { celOrigin: e.celOrigin } : merged.celOrigin ? { celOrigin: merged.celOrigin } : {}) });
    }
    // Tier problems were found against the base gates; report them where the tier wrote them.
    const relocate = (p: SourceProblem): SourceProblem => {
      const o = t.gates.get(p.path)?.origin;
      return o ? { ...p, file: o.file, ...keyPositionOf(o.parsed, o.path), path: o.path.join('.'), message: p.message.replace(/^[^:]*:/, `${o.path.join('.')}:`) } : p;
    };
    problems.push(...scratch.map(relocate));
    warnings.push(...scratchWarnings.map(relocate));
    tiers[tier] = { ...(t.description === undefined ? {} : { description: t.description }), gates: check(effective, `tiers.${tier}`) };
  }
  const allGates = new Set([...gates, ...Object.values(tiers).flatMap((t) => t.gates)].map((g) => g.name));
  const fastTrack: Record<string, ResolvedFastTrack> = {};
  for (const [ft, { value, origin }] of layer.fastTrack) {
    for (const [i, g] of value.relax.entries()) {
      const path = [...origin.path, 'relax', i];
      const at = (message: string) => problems.push({ file: origin.file, ...positionOf(origin.parsed, path), path: path.join('.'), message: `${path.join('.')}: ${message}` });
      if (!allGates.has(g)) at(`relaxes "${g}", which is not a gate of policy "${name}"`);
      const kinds = [...gates, ...Object.values(tiers).flatMap((t) => t.gates)].filter((x) => x.name === g).map((x) => x.kind);
      if (kinds.includes('freeze')) at(`a fast-track cannot relax the freeze gate "${g}": only an exception overrides a freeze`);
    }
    fastTrack[ft] = value;
  }
  if (problems.length > before) return undefined;
  const doc = loaded.doc;
  return {
    name,
    ...(doc.description === undefined ? {} : { description: doc.description }),
    extends: layer.chain,
    params: layer.params,
    tierLabel: layer.tierLabel,
    unknownTier: layer.unknownTier,
    gates,
    tiers,
    fastTrack,
    exceptions: layer.exceptions,
    loosened,
  };
}

// ---------------------------------------------------------------- parameters

interface Found {
  path: (string | number)[];
  message: string;
}

/** In templates: placeholders inside CEL are refused (use `params.x`); elsewhere every placeholder is reported. */
function findPlaceholders(v: unknown, path: (string | number)[], template: boolean): Found[] {
  if (typeof v === 'string') {
    if (!v.includes('${{')) return [];
    const key = path.at(-1);
    if (template && typeof key === 'string' && CEL_FIELDS.has(key)) return [{ path, message: `${path.join('.')}: use params.NAME inside CEL, not \${{ params.NAME }} (text substitution into an expression is an injection risk)` }];
    return template ? [] : [{ path, message: '' }];
  }
  if (Array.isArray(v)) return v.flatMap((x, i) => findPlaceholders(x, [...path, i], template));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => findPlaceholders(x, [...path, k], template));
  return [];
}

/**
 * Replaces `${{ params.X }}`: a whole value takes the parameter's type, a
 * placeholder inside text is interpolated. With `lenient`, unknown parameters
 * become samples (or the key is dropped) so a template can be checked alone.
 */
function substitute(v: unknown, params: Record<string, unknown>, lenient: boolean, path: (string | number)[] = [], used: { name: string; path: (string | number)[] }[] = []): { value: unknown; used: typeof used } {
  const walk = (x: unknown, p: (string | number)[]): unknown => {
    if (typeof x === 'string') {
      const key = p.at(-1);
      if (typeof key === 'string' && CEL_FIELDS.has(key)) return x;
      const whole = WHOLE_PLACEHOLDER.exec(x);
      if (whole) {
        const name = whole[1] ?? '';
        used.push({ name, path: p });
        return Object.hasOwn(params, name) ? params[name] : lenient ? DROP : x;
      }
      return x.replace(PLACEHOLDER, (m, name: string) => {
        used.push({ name, path: p });
        const val = params[name];
        if (val === undefined) return lenient ? 'x' : m;
        if (Array.isArray(val)) return val.join(',');
        return typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean' ? String(val) : JSON.stringify(val);
      });
    }
    if (Array.isArray(x)) return x.map((e, i) => walk(e, [...p, i])).filter((e) => e !== DROP);
    if (x !== null && typeof x === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, e] of Object.entries(x)) {
        const w = walk(e, [...p, k]);
        if (w !== DROP) out[k] = w;
      }
      return out;
    }
    return x;
  };
  return { value: walk(v, path), used };
}

const DROP = Symbol('drop');

function sampleParams(declared: Record<string, ParameterSpec>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(declared ?? {})) if (spec && typeof spec === 'object' && spec.default !== undefined) out[k] = spec.default;
  return out;
}

function paramTypeProblem(spec: ParameterSpec, v: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      return typeof v === 'string' ? undefined : `expected a string, got ${JSON.stringify(v)}`;
    case 'integer':
      return Number.isSafeInteger(v) ? undefined : `expected an integer, got ${JSON.stringify(v)}`;
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `expected true or false, got ${JSON.stringify(v)}`;
    case 'duration':
      return DurationSchema.safeParse(v).success ? undefined : `expected a duration such as 24h, got ${JSON.stringify(v)}`;
    case 'string-list':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : `expected a list of strings, got ${JSON.stringify(v)}`;
  }
}

export function isKnownPredicateType(t: string): boolean {
  return KNOWN_PREDICATE_TYPES.includes(t);
}

export { GateSourceSchema };
