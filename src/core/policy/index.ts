/** The policy engine's public entry: other modules import from here, not from its files. */
export { evaluate, exceptionProblem } from './engine.ts';
export { compilePolicy, type CompiledPolicy, type CompiledGate, type CompileResult } from './compile.ts';
export { resolvePolicySet, policyDigest, isKnownPredicateType, type PolicySource, type ResolvedPolicy, type ResolveResult, type ParsedTest, type Loosening } from './resolve.ts';
export { runPolicyTests, fixtureInput, checkExpectations, type TestReport, type TestFileReport, type CaseReport } from './fixtures.ts';
export { signPolicySet, verifyPolicySet, policySetPayload, policySetDigest, POLICY_PAYLOAD_TYPE, type PolicySetPayload, type EnvironmentBinding } from './bundle.ts';
export { compileCel, DEFAULT_CEL_LIMITS, INPUT_VARIABLES, WHERE_VARIABLES, type CelLimits } from './cel.ts';
export { frozenAt, localTime } from './freeze.ts';
export { policyJsonSchema, API_VERSION, GATE_KINDS, type Gate, type GateKind, type GateOutcome } from './schema.ts';
export type { Decision, GateResult, PolicyInput, PolicyException, Approval, HistoryEntry, PolicyArtifact, KnownKey, Waiver } from './types.ts';
