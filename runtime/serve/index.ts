/**
 * The serving side of the runtime (store, queues, host), kept apart from `hl7c/runtime` so that
 * channel code and message parsing never load the database driver.
 */
export { SqliteStore } from '../store/sqlite-store.js';
export type { SqliteStoreOptions } from '../store/sqlite-store.js';
export type * from '../store/types.js';
export type * from '../store/store.js';
export { openStore, isPostgresUrl } from '../store/open.js';
export type { OpenStoreOptions } from '../store/open.js';
export { ChannelHost } from './host.js';
export { withSpecRelativePaths } from './spec-paths.js';
export type { HostOptions, LoadedChannel } from './host.js';
export { DestinationWorker, backoffDelay } from './worker.js';
export { startAdminServer } from './admin.js';
export type { AdminServer, AdminServerOptions, ExtraRoute, RouteAnswer, RouteHandler, RouteRequest, RouteRole } from './admin.js';
export type { AdminRole, AdminToken, Caller } from './admin-auth.js';
export { Operations, OperationError, parseTime } from './operations.js';
export { MASK, maskReason } from './mask-reason.js';
export type { ChannelView, DestinationView, HealthReport, MessageDetail, MessageQuery, MessageSummary, OperationsOptions, ReplayReport, StatusReport } from './operations.js';
export { ServeActivity, ACK_LATENCY_BUCKETS } from './activity.js';
export type { ServeEvent, ReloadOutcome } from './activity.js';
export type { ChannelState, WorkerState } from './host.js';
export { fieldName } from '../hl7/field-names.js';
