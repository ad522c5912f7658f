/**
 * The runtime's public API: everything generated channels and the CLI may use.
 * Nothing outside runtime/ is imported from here.
 */
// First: sets the regular-expression engine flags before any channel's pattern is compiled.
export { patternProblem } from './channel/patterns.js';
export * from './hl7/index.js';
export { hl7Timestamp, newControlId } from './hl7/timestamp.js';
export type { AckCode, AckCondition, AckError, AckMode, AckOptions, AckOutcome, AckRequest, AckSummary, ReceivedHeader } from './ack/ack.js';
export {
  ackCodeFor,
  ackCodesToSend,
  ackForPayload,
  acksForPayload,
  applicationAckCodeFor,
  ackRequestOf,
  ackBytes,
  buildAck,
  buildAckFromHeader,
  HL7_ERROR,
  isPositiveAck,
  readAck,
  readHeaderLeniently,
  shouldSendAcceptAck,
  shouldSendApplicationAck,
} from './ack/ack.js';
export { BufferBudget, DEFAULT_MAX_MESSAGE_BYTES, frame, HEAD_BYTES, MllpDecoder } from './mllp/framing.js';
export type { FrameEvents } from './mllp/framing.js';
export { allowList, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_BUFFERED_BYTES, isAllowed, MllpServer } from './mllp/server.js';
export type { ConnectionInfo, MllpHandler, MllpReply, MllpServerCounters, MllpServerOptions, OversizeHandler } from './mllp/server.js';
export { MllpClient, MllpError } from './mllp/client.js';
export type { MllpClientOptions, SendResult } from './mllp/client.js';
export type { ClientTlsOptions, ServerTlsOptions } from './mllp/tls.js';
export { readPem } from './mllp/tls.js';
export { createLogger, silentLogger, ThrottledLog } from './log.js';
export type { Logger } from './log.js';
export { acknowledge, acknowledgements, isAckMessage, parseErrorToAckError, receive } from './ack/receive.js';
export type { Received } from './ack/receive.js';
export * from './channel/conditions.js';
export * from './channel/identifiers.js';
export * from './channel/transforms.js';
export * from './channel/edits.js';
export { Scope } from './channel/scope.js';
export type { GroupDefinition, GroupInstance, MessageStructure, StructureElement } from './hl7/structure.js';
export { groupDefinitions, homeOf, matchStructure, reachableAround, structureDefinition, structureIdOf, structureIds } from './hl7/structure.js';
export { DEFAULT_PROCESSING_BUDGET_MS, ProcessingBudgetExceeded } from './channel/budget.js';
export * from './channel/channel.js';
export { interpolate, replaceEnvReferences } from './channel/env.js';
export * from './channel/builder.js';
export { addressList, copyMessage, isJsonTemplate, jsonScalar, sqlValue, templateJson, templateJsonText, templateJsonValue, templateLineText, templateText, whenGiven } from './channel/payloads.js';
