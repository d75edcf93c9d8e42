import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREDICATE_TYPES, artifactSubject, parseStatement, predicateTypeFor, validatePredicate } from '../../src/core/intoto.ts';
import { throwsWithCode } from '../helpers.ts';

const provenance = {
  buildDefinition: {
    buildType: 'https://actions.github.io/buildtypes/workflow/v1',
    externalParameters: { workflow: { ref: 'refs/heads/main', repository: 'https://github.com/acme/app', path: '.github/workflows/release.yml' } },
    resolvedDependencies: [{ uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: '3f2c1e9aa1b2c3d4e5f60718293a4b5c6d7e8f90' } }],
  },
  runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' }, metadata: { invocationId: 'https://github.com/acme/app/actions/runs/1/attempts/1', startedOn: '2026-03-01T12:00:00Z' } },
};
const testResult = { result: 'PASSED', configuration: [{ name: 'ci.yml', digest: { sha256: 'ab'.repeat(32) } }], passedTests: ['a'], failedTests: [] };
const vulns = {
  scanner: {
    uri: 'pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9',
    version: '0.19.2',
    db: { uri: 'pkg:github/aquasecurity/trivy-db/commit/4c76bb580b2736d67751410fa4ab66d2b6b9b27d', version: 'v1-2021080612', lastUpdate: '2021-08-06T17:45:50.52Z' },
    result: [{ id: 'CVE-123', severity: [{ method: 'nvd', score: 'medium' }, { method: 'cvss_score', score: '5.2' }] }],
  },
  metadata: { scanStartedOn: '2021-08-06T17:45:50.52Z', scanFinishedOn: '2021-08-06T17:50:50.52Z' },
};
const spdx = {
  spdxVersion: 'SPDX-2.3',
  SPDXID: 'SPDXRef-DOCUMENT',
  name: 'app',
  dataLicense: 'CC0-1.0',
  documentNamespace: 'https://acme.example/spdx/app-1.4.2',
  creationInfo: { created: '2026-03-01T12:00:00Z', creators: ['Tool: syft'] },
};
const cyclonedx = { bomFormat: 'CycloneDX', specVersion: '1.5', serialNumber: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79', version: 1, components: [{ type: 'library', name: 'acme-library' }] };

describe('in-toto predicates', () => {
  it('maps the shorthands to the specs\' type URIs', () => {
    assert.equal(predicateTypeFor('provenance'), 'https://slsa.dev/provenance/v1');
    assert.equal(predicateTypeFor('test-result'), 'https://in-toto.io/attestation/test-result/v0.1');
    assert.equal(predicateTypeFor('vulns'), 'https://in-toto.io/attestation/vulns/v0.1');
    assert.equal(predicateTypeFor('spdx'), 'https://spdx.dev/Document/v2.3');
    assert.equal(predicateTypeFor('cyclonedx'), 'https://cyclonedx.org/bom');
    throwsWithCode(() => predicateTypeFor('sbom'), 'USAGE');
  });

  it('accepts predicates that follow their specs, with extension fields', () => {
    validatePredicate(PREDICATE_TYPES.provenance, { ...provenance, extra: 1 });
    validatePredicate(PREDICATE_TYPES['test-result'], testResult);
    validatePredicate(PREDICATE_TYPES.vulns, vulns);
    validatePredicate(PREDICATE_TYPES.spdx, spdx);
    validatePredicate('https://spdx.dev/Document', spdx);
    validatePredicate('https://spdx.dev/Document/v3', { '@context': 'https://spdx.org/rdf/3.0/spdx-context.jsonld', '@graph': [] });
    validatePredicate(PREDICATE_TYPES.cyclonedx, cyclonedx);
    validatePredicate('https://cyclonedx.org/bom/v1.4', cyclonedx);
    validatePredicate('https://example.com/custom/v1', { anything: ['goes'] });
  });

  it('refuses a predicate that does not fit, naming the field', () => {
    const cases: [string, unknown, string][] = [
      [PREDICATE_TYPES.provenance, { ...provenance, runDetails: { builder: {} } }, 'runDetails.builder.id'],
      [PREDICATE_TYPES.provenance, { runDetails: provenance.runDetails }, 'buildDefinition'],
      [PREDICATE_TYPES.provenance, { ...provenance, buildDefinition: { ...provenance.buildDefinition, resolvedDependencies: [{ name: 'x' }] } }, 'buildDefinition.resolvedDependencies.0'],
      [PREDICATE_TYPES.provenance, { ...provenance, runDetails: { ...provenance.runDetails, metadata: { startedOn: 'yesterday' } } }, 'runDetails.metadata.startedOn'],
      [PREDICATE_TYPES['test-result'], { ...testResult, result: 'OK' }, 'result'],
      [PREDICATE_TYPES['test-result'], { result: 'PASSED' }, 'configuration'],
      [PREDICATE_TYPES.vulns, { ...vulns, metadata: { scanStartedOn: vulns.metadata.scanStartedOn } }, 'metadata.scanFinishedOn'],
      [PREDICATE_TYPES.vulns, { ...vulns, scanner: { ...vulns.scanner, result: [{ id: 'CVE-1', severity: [{ method: 'nvd', score: 5 }] }] } }, 'scanner.result.0.severity.0.score'],
      [PREDICATE_TYPES.spdx, { ...spdx, spdxVersion: 'SPDX-3.0' }, 'spdxVersion'],
      [PREDICATE_TYPES.cyclonedx, { ...cyclonedx, bomFormat: 'SPDX' }, 'bomFormat'],
      [PREDICATE_TYPES.cyclonedx, { ...cyclonedx, serialNumber: 'not-a-urn' }, 'serialNumber'],
    ];
    for (const [type, predicate, field] of cases) {
      const e = throwsWithCode(() => validatePredicate(type, predicate), 'PREDICATE_INVALID');
      assert.equal(e.details?.['field'], field, e.message);
      assert.match(e.message, new RegExp(`field ${field.replaceAll('.', '\\.')}:`));
      assert.equal(e.exitCode, 2);
    }
    throwsWithCode(() => validatePredicate('https://example.com/x', ['not', 'an', 'object']), 'PREDICATE_INVALID');
  });

  it('builds the subject from the artifact: name@version and every digest', () => {
    const s = artifactSubject({
      digest: `sha256:${'a'.repeat(64)}`,
      name: 'pkg:npm/app',
      version: '1.4.2',
      size: 1,
      digests: { sha256: 'a'.repeat(64), sha512: 'b'.repeat(128) },
      labels: {},
      source: null,
      stored: true,
      createdAt: '',
      createdBy: '',
    });
    assert.deepEqual(s, { name: 'pkg:npm/app@1.4.2', digest: { sha256: 'a'.repeat(64), sha512: 'b'.repeat(128) } });
  });

  it('reads only Statement v1 with digests in every subject', () => {
    const ok = { _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: 'a'.repeat(64) } }], predicateType: 'x', predicate: {} };
    assert.equal(parseStatement(Buffer.from(JSON.stringify(ok))).ok, true);
    for (const bad of [
      { ...ok, _type: 'https://in-toto.io/Statement/v0.1' },
      { ...ok, subject: [] },
      { ...ok, subject: [{ name: 'x' }] },
      { ...ok, subject: [{ digest: { sha256: 1 } }] },
      { ...ok, predicateType: '' },
      { ...ok, predicate: [] },
    ]) {
      const r = parseStatement(Buffer.from(JSON.stringify(bad)));
      assert.ok(!r.ok && r.reason.code === 'STATEMENT_INVALID', JSON.stringify(bad));
    }
    const notJson = parseStatement(Buffer.from('{'));
    assert.ok(!notJson.ok && notJson.reason.code === 'STATEMENT_INVALID');
  });
});
