/**
 * in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
 * and the predicate types Custody knows by name.
 *
 * Parsing follows the framework's rules (spec/v1/README.md, "Parsing rules"):
 * unrecognised fields are ignored, so every object schema here is loose.
 */
import { z } from 'zod';
import type { Artifact } from './artifact.ts';
import { isObject } from './dsse.ts';
import { CustodyError } from './errors.ts';
import type { Statement } from './evidence.ts';
import { fail, type Parsed } from './verify/reasons.ts';

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

export const PREDICATE_TYPES = {
  provenance: 'https://slsa.dev/provenance/v1',
  'test-result': 'https://in-toto.io/attestation/test-result/v0.1',
  vulns: 'https://in-toto.io/attestation/vulns/v0.1',
  // spec/predicates/spdx2.md names both; the versioned one is what SBOM tools emit.
  spdx: 'https://spdx.dev/Document/v2.3',
  cyclonedx: 'https://cyclonedx.org/bom',
} as const;

export type PredicateShorthand = keyof typeof PREDICATE_TYPES;

export function predicateTypeFor(shorthand: string): string {
  if (!Object.hasOwn(PREDICATE_TYPES, shorthand)) {
    throw new CustodyError('USAGE', `unknown predicate type shorthand "${shorthand}"`, { hint: `use one of ${Object.keys(PREDICATE_TYPES).join(', ')}, or --predicate-type <uri>` });
  }
  return PREDICATE_TYPES[shorthand as PredicateShorthand];
}

// ---------------------------------------------------------------- field types

// spec/v1/field_types.md: Timestamp is RFC 3339 in UTC.
const timestamp = z.iso.datetime({ offset: true });
const uri = z.string().min(1);
const digestSet = z.record(z.string().min(1), z.string().min(1));

// spec/v1/resource_descriptor.md: all optional, but one of uri, digest or content must be set.
const resourceDescriptor = z
  .looseObject({
    name: z.string().optional(),
    uri: uri.optional(),
    digest: digestSet.optional(),
    content: z.string().optional(),
    downloadLocation: uri.optional(),
    mediaType: z.string().optional(),
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((rd) => rd.uri !== undefined || rd.digest !== undefined || rd.content !== undefined, { message: 'a ResourceDescriptor needs one of uri, digest or content' });

// ---------------------------------------------------------------- predicates

/** SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance#schema). */
const provenanceV1 = z.looseObject({
  buildDefinition: z.looseObject({
    buildType: uri,
    externalParameters: z.record(z.string(), z.unknown()),
    internalParameters: z.record(z.string(), z.unknown()).optional(),
    resolvedDependencies: z.array(resourceDescriptor).optional(),
  }),
  runDetails: z.looseObject({
    builder: z.looseObject({
      id: uri,
      version: z.record(z.string(), z.string()).optional(),
      builderDependencies: z.array(resourceDescriptor).optional(),
    }),
    metadata: z
      .looseObject({ invocationId: z.string().optional(), startedOn: timestamp.optional(), finishedOn: timestamp.optional() })
      .optional(),
    byproducts: z.array(resourceDescriptor).optional(),
  }),
});

/** in-toto test-result v0.1 (spec/predicates/test-result.md). */
const testResultV01 = z.looseObject({
  result: z.enum(['PASSED', 'WARNED', 'FAILED']),
  configuration: z.array(resourceDescriptor),
  url: uri.optional(),
  passedTests: z.array(z.string()).optional(),
  warnedTests: z.array(z.string()).optional(),
  failedTests: z.array(z.string()).optional(),
});

/** in-toto vulns v0.1 (spec/predicates/vulns.md); result entries as in its example and cosign's spec. */
const vulnsV01 = z.looseObject({
  scanner: z.looseObject({
    uri,
    version: z.string().optional(),
    db: z.looseObject({ uri: uri.optional(), version: z.string().optional(), lastUpdate: timestamp }).optional(),
    result: z.array(
      z.looseObject({
        id: z.string().min(1),
        severity: z.array(z.looseObject({ method: z.string().min(1), score: z.string() })),
        annotations: z.unknown().optional(),
      }),
    ),
  }),
  metadata: z.looseObject({ scanStartedOn: timestamp, scanFinishedOn: timestamp }),
});

/** SPDX 2.x document (spec/predicates/spdx2.md → SPDX 2.3 §6, document creation information). */
const spdx2 = z.looseObject({
  spdxVersion: z.string().regex(/^SPDX-2\.\d+$/, 'expected "SPDX-2.<minor>"'),
  SPDXID: z.literal('SPDXRef-DOCUMENT'),
  name: z.string().min(1),
  dataLicense: z.string().min(1),
  documentNamespace: z.string().min(1),
  creationInfo: z.looseObject({ created: timestamp, creators: z.array(z.string()).min(1) }),
});

/** SPDX 3 JSON-LD (spec/predicates/spdx3.md). */
const spdx3 = z.looseObject({
  '@context': z.union([z.string().min(1), z.array(z.unknown()).min(1)]),
  '@graph': z.array(z.record(z.string(), z.unknown())),
});

/** CycloneDX BOM (spec/predicates/cyclonedx.md → the CycloneDX JSON schema's required fields). */
const cyclonedx = z.looseObject({
  bomFormat: z.literal('CycloneDX'),
  specVersion: z.string().regex(/^1\.\d+$/, 'expected "1.<minor>"'),
  serialNumber: z.string().regex(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'expected urn:uuid:<uuid>').optional(),
  version: z.number().int().min(1).optional(),
  components: z.array(z.looseObject({ type: z.string().min(1), name: z.string().min(1) })).optional(),
});

const SCHEMAS: Record<string, z.ZodType> = {
  [PREDICATE_TYPES.provenance]: provenanceV1,
  [PREDICATE_TYPES['test-result']]: testResultV01,
  [PREDICATE_TYPES.vulns]: vulnsV01,
  'https://spdx.dev/Document': spdx2,
  [PREDICATE_TYPES.spdx]: spdx2,
  'https://spdx.dev/Document/v3': spdx3,
  [PREDICATE_TYPES.cyclonedx]: cyclonedx,
};

// CycloneDX attestations also carry the spec version in the type (https://cyclonedx.org/bom/v1.4).
function schemaFor(predicateType: string): z.ZodType | undefined {
  return SCHEMAS[predicateType] ?? (/^https:\/\/cyclonedx\.org\/bom\/v1\.\d+$/.test(predicateType) ? cyclonedx : undefined);
}

export function isKnownPredicateType(predicateType: string): boolean {
  return schemaFor(predicateType) !== undefined;
}

/**
 * Checks a predicate against its type's schema, if Custody knows the type;
 * any JSON object passes for other types. Refuses with the first bad field named.
 */
export function validatePredicate(predicateType: string, predicate: unknown): Record<string, unknown> {
  if (!isObject(predicate)) throw new CustodyError('PREDICATE_INVALID', 'the predicate must be a JSON object');
  const schema = schemaFor(predicateType);
  if (!schema) return predicate;
  const r = schema.safeParse(predicate);
  if (r.success) return predicate;
  const problems = r.error.issues.map((i) => ({ field: i.path.map(String).join('.') || '(predicate)', message: i.message }));
  const first = problems[0] ?? { field: '(predicate)', message: 'invalid' };
  throw new CustodyError('PREDICATE_INVALID', `predicate field ${first.field}: ${first.message} (${predicateType})`, {
    hint: problems.length > 1 ? `${problems.length} problems; fix ${first.field} first` : `see the ${predicateType} specification`,
    details: { predicateType, field: first.field, problems },
  });
}

// ---------------------------------------------------------------- statements

export type StatementSubject = Statement['subject'][number];

/** The subject Custody attests: the artifact's name@version and every digest it knows. */
export function artifactSubject(artifact: Artifact): StatementSubject {
  const digest: Record<string, string> = {};
  if (artifact.digests.sha256) digest['sha256'] = artifact.digests.sha256;
  if (artifact.digests.sha512) digest['sha512'] = artifact.digests.sha512;
  return { name: `${artifact.name}@${artifact.version}`, digest };
}

export function buildStatement(subject: StatementSubject[], predicateType: string, predicate: Record<string, unknown>): Statement {
  return { _type: STATEMENT_V1, subject, predicateType, predicate };
}

const MAX_SUBJECTS = 1024;

/**
 * Reads a Statement v1 from a DSSE payload. Only the statement layer is checked
 * here (type, subjects with digests, predicate type, predicate an object): the
 * predicate's own schema is checked when Custody signs it, and by policies.
 */
export function parseStatement(payload: Uint8Array): Parsed<Statement> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.isBuffer(payload) ? payload.toString('utf8') : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return fail('STATEMENT_INVALID', 'the payload is not JSON');
  }
  if (!isObject(value)) return fail('STATEMENT_INVALID', 'the statement is not a JSON object');
  if (value['_type'] !== STATEMENT_V1) return fail('STATEMENT_INVALID', `statement _type must be ${STATEMENT_V1}`);
  const { subject, predicateType, predicate } = value;
  if (typeof predicateType !== 'string' || predicateType === '') return fail('STATEMENT_INVALID', 'statement predicateType must be a non-empty string');
  if (predicate !== undefined && !isObject(predicate)) return fail('STATEMENT_INVALID', 'statement predicate must be an object');
  if (!Array.isArray(subject) || subject.length === 0) return fail('STATEMENT_INVALID', 'statement subject must be a non-empty array');
  if (subject.length > MAX_SUBJECTS) return fail('STATEMENT_INVALID', `statement has more than ${MAX_SUBJECTS} subjects`);
  for (let i = 0; i < subject.length; i++) {
    const s: unknown = subject[i];
    if (!isObject(s) || !isObject(s['digest'])) return fail('STATEMENT_INVALID', `statement subject[${i}] has no digest`);
    if (s['name'] !== undefined && typeof s['name'] !== 'string') return fail('STATEMENT_INVALID', `statement subject[${i}].name must be a string`);
    const digest = s['digest'];
    for (const alg in digest) {
      if (typeof digest[alg] !== 'string') return fail('STATEMENT_INVALID', `statement subject[${i}].digest values must be strings`);
    }
  }
  return { ok: true, value: value as unknown as Statement };
}
