// Types of @tickforge/client (hand-written; the code is plain ES modules).
// PROTOCOL.md in the tickforge repository describes every message.

// ---- values, schemas, messages -------------------------------------------------

/** A float whose type survives although its value is whole: `float(2)` is 2.0, a plain `2` an integer. */
export class Float {
  constructor(value: number);
  readonly value: number;
  valueOf(): number;
  toString(): string;
  toJSON(): number;
}
/** The float `value` (2.0, not the integer 2). */
export function float(value: number): Float;

/**
 * The contract's value: null, bool, integer (a safe-integer number, or a
 * bigint within i64), float (a non-whole number, or a Float), string,
 * bytes (Uint8Array), list, or string-keyed map.
 */
export type Value = null | boolean | number | bigint | Float | string | Uint8Array | Value[] | { [key: string]: Value };
/** A map value: options, filters, metadata. */
export type ValueMap = { [key: string]: Value };

/** A field type: an integer type, or a real number quantized to steps of 1/scale. */
export type FieldType = "u8" | "i8" | "u16" | "i16" | "i32" | { fixed: number };
/** One entity field; `integrates` names the velocity field that moves it (dead reckoning). */
export interface FieldDef {
  name: string;
  type: FieldType;
  integrates?: number;
}
/** A room's entity schema (from `joined` or `watching`). */
export interface Schema {
  kinds: string[];
  fields: FieldDef[];
}
/** A game's input fields, in wire order. */
export interface InputSchema {
  fields: { name: string; type: FieldType }[];
}
/** A schema ready for decoding (compileSchema). */
export interface CompiledSchema {
  readonly source: Schema;
  readonly kinds: string[];
  readonly kindIndex: Map<string, number>;
  readonly fields: { name: string; type: FieldType; scale: number; lo: number; hi: number; integrates: number; unsigned: boolean }[];
  readonly names: string[];
  readonly fieldIndex: Map<string, number>;
  readonly count: number;
  readonly fullMask: number;
  readonly integrating: [number, number][];
}

export type RejectCode =
  | "bad_request"
  | "unsupported"
  | "not_found"
  | "room_full"
  | "already_in_room"
  | "not_in_room"
  | "unauthorized"
  | "rate_limited"
  | "overloaded"
  | "internal"
  | "refused";

export type Request =
  | { type: "hello"; token?: string; client?: string }
  | { type: "list_rooms"; game?: string; filter?: ValueMap }
  | { type: "create_room"; game: string; max_players?: number; tick_hz?: number; private?: boolean; options?: ValueMap }
  | { type: "join_room"; room_id: string; reservation?: string }
  | { type: "join_or_create"; game: string; options?: ValueMap }
  | { type: "leave_room" }
  | { type: "ping"; client_time_us: number }
  | { type: "resume"; room_id: string; resume_token: string }
  | { type: "watch_room"; room_id: string }
  | { type: "game_message"; name: string; data: Value };

export interface RoomInfo {
  room_id: string;
  game: string;
  players: number;
  max_players: number;
  tick_hz: number;
  spectators: number;
  metadata: ValueMap;
}
export interface Welcome {
  type: "welcome";
  session_id: string;
  server_version: string;
  user_id?: string;
}
export interface Joined {
  type: "joined";
  room_id: string;
  game: string;
  player_id: number;
  entity_id: number;
  tick_hz: number;
  max_players: number;
  resume_token: string;
  schema: Schema;
  input_schema: InputSchema;
}
export interface Watching {
  type: "watching";
  room_id: string;
  game: string;
  tick_hz: number;
  schema: Schema;
  input_schema: InputSchema;
}
export type Confirm =
  | Welcome
  | { type: "room_list"; rooms: RoomInfo[] }
  | Joined
  | { type: "left"; room_id: string }
  | { type: "pong"; client_time_us: number; server_time_us: number }
  | Watching
  | { type: "game_reply"; data: Value }
  | { type: "redirect"; url: string; room_id: string; reservation: string };

export type Indication =
  | { type: "player_joined"; player_id: number; user_id?: string; name?: string }
  | { type: "player_left"; player_id: number; reason: string }
  | { type: "room_closing"; reason: string }
  | { type: "error"; code: RejectCode; reason: string }
  | { type: "player_disconnected"; player_id: number }
  | { type: "player_reconnected"; player_id: number }
  | { type: "game_event"; name: string; data: Value };

/** A JSON state object: `{spawned, updated, removed}`. */
export interface JsonState {
  spawned?: Record<string, unknown>[];
  updated?: Record<string, unknown>[];
  removed?: number[];
}

export type ClientMsg =
  | { type: "req"; id: number; body: Request }
  | { type: "input"; seq: number; ack?: number; data: Uint8Array | Record<string, number | Float> }
  | { type: "ack"; tick: number };

export interface TickMsg {
  type: "tick";
  tick: number;
  server_time_us: number;
  baseline: number | null;
  input_seq: number;
  /** The blob (binary form) or the parsed state object (JSON form). */
  state: Uint8Array | JsonState;
}
export type ServerMsg =
  | { type: "cfm"; id: number; body: Confirm }
  | { type: "rej"; id: number; code: RejectCode; reason: string }
  | { type: "ind"; body: Indication }
  | TickMsg;

export type Format = "bin" | "json";

export const REJECT_CODES: readonly RejectCode[];
export const REQUEST_NAMES: readonly Request["type"][];
export const SUBPROTOCOLS: { readonly bin: "tickforge.v1.bin"; readonly json: "tickforge.v1.json" };

/** Encodes a client message: bytes (binary form) or text (JSON form). */
export function encodeClient(format: "bin", msg: ClientMsg): Uint8Array;
export function encodeClient(format: "json", msg: ClientMsg): string;
export function encodeClient(format: Format, msg: ClientMsg): Uint8Array | string;
/** Decodes a client message (what a server does). Throws DecodeError. */
export function decodeClient(format: Format, data: Uint8Array | ArrayBuffer | string): ClientMsg;
/** Encodes a server message (what a server does). */
export function encodeServer(format: "bin", msg: ServerMsg): Uint8Array;
export function encodeServer(format: "json", msg: ServerMsg): string;
export function encodeServer(format: Format, msg: ServerMsg): Uint8Array | string;
/** Decodes a server message. Throws DecodeError. A binary tick's state is a view into `data`. */
export function decodeServer(format: Format, data: Uint8Array | ArrayBuffer | string): ServerMsg;
/** Canonical JSON text of parsed JSON (state objects, input data). */
export function writeJson(value: unknown): string;
/** Parses JSON exactly: whole-valued float tokens as Float, integers past 2^53 as bigint. Throws DecodeError. */
export function parseJson(text: string): unknown;
/** A double as the Rust side's JSON writer writes it (`11.0`, `1e-6`, `1e+16`). */
export function formatFloat(value: number): string;

export const MAX_FIELDS: number;
export const MAX_INPUT_FIELDS: number;
/** Validates and prepares an entity schema. Throws SchemaError. */
export function compileSchema(schema: Schema): CompiledSchema;
/** Validates an input schema. Throws SchemaError. */
export function checkInputSchema(schema: InputSchema): void;
/** Quantizes input values given by field name; throws InputError. Returns quantized values in schema order. */
export function quantizeInput(schema: InputSchema, values: Record<string, number | Float>): number[];
/** Input data of quantized values: the fields' bytes (bin), or an object by name (json). */
export function inputData(format: "bin", schema: InputSchema, quantized: number[]): Uint8Array;
export function inputData(format: "json", schema: InputSchema, quantized: number[]): Record<string, number | Float>;
/** Reads binary input data with the schema (server side): quantized values. Throws InputError. */
export function readInputBin(schema: InputSchema, bytes: Uint8Array): number[];
/** Reads JSON input data with the schema (server side): quantized values. Throws InputError. */
export function readInputJson(schema: InputSchema, data: Record<string, unknown>): number[];
/** round(value × scale) for fixed (half away from zero), saturating at the type's range. */
export function quantize(type: FieldType, value: number): number;
/** q / scale for fixed, q otherwise. */
export function dequantize(type: FieldType, q: number): number;
/** Dead reckoning's step: v / tickHz, rounded half away from zero. */
export function stepPerTick(v: number, tickHz: number): number;

export const MAX_DEPTH: number;
export const MAX_STRING: number;
export const MAX_SIZE: number;
/** Checks every bound of a value (both encodings must fit). Throws ValueError. */
export function checkValue(value: Value): void;
/** Checks a value that must be a map. Throws ValueError. */
export function checkMap(value: Value): void;
/** Equality as the protocol defines it (1 is not 1.0; floats by bits; maps by content). */
export function valueEquals(a: Value, b: Value): boolean;
export function valueType(value: Value): "null" | "bool" | "int" | "float" | "string" | "bytes" | "list" | "map";
export function encodeValueBin(value: Value): Uint8Array;
export function decodeValueBin(bytes: Uint8Array): Value;
export function writeValueJson(value: Value): string;
/** Converts parsed JSON (parseJson) into a value, enforcing every bound. */
export function valueFromJson(json: unknown): Value;

// ---- states ------------------------------------------------------------------------

/** An entity as the game reads it: id, kind name, each field by name (fixed fields as real numbers). */
export interface Entity {
  readonly id: number;
  readonly kind: string;
  readonly [field: string]: number | string;
}

export const MAX_ENTITIES: number;

/** A room's state at one tick: entities sorted by id, values quantized in one Int32Array. */
export class Snapshot {
  constructor(schema: CompiledSchema, tick: number, data?: Int32Array);
  readonly schema: CompiledSchema;
  readonly tick: number;
  /** Numbers per entity: id, kind index, then the fields. */
  readonly stride: number;
  readonly data: Int32Array;
  readonly size: number;
  idAt(i: number): number;
  kindAt(i: number): number;
  indexOf(id: number): number;
  has(id: number): boolean;
  at(i: number): Entity;
  get(id: number): Entity | undefined;
  entities(): Entity[];
  count(kind: string): number;
  quantized(i: number, field: number): number;
  rows(): number[][];
  static fromRows(schema: CompiledSchema, tick: number, rows: number[][]): Snapshot;
}

/** Applies a binary state blob to `base` (null: a full state). Throws DeltaError. */
export function applyBin(schema: CompiledSchema, tickHz: number, base: Snapshot | null, tick: number, bytes: Uint8Array): Snapshot;
/** Applies a JSON state object to `base` (null: a full state). Throws DeltaError. */
export function applyJson(schema: CompiledSchema, base: Snapshot | null, tick: number, state: JsonState): Snapshot;

export const MAX_BASELINES: number;
export const DELAY_PERIODS: number;

export interface Interpolated {
  /** How far between the two states drawn (0: the older, 1: the newer). */
  alpha: number;
  /** The newer state's tick, or null before any. */
  tick: number | null;
  entities: Entity[];
}

/** One room's states: baselines as PROTOCOL.md section 6 keeps them, history for drawing. */
export class StateStore {
  constructor(options: { schema: Schema | CompiledSchema; tickHz: number; format: Format; history?: number });
  readonly schema: CompiledSchema;
  readonly tickHz: number;
  readonly format: Format;
  readonly baselines: Snapshot[];
  readonly history: { snapshot: Snapshot; serverTimeUs: number; arrivedMs: number }[];
  /** The newest applied delta's baseline, or null. */
  readonly mark: number | null;
  readonly latest: Snapshot | null;
  readonly previous: Snapshot | null;
  readonly tick: number | null;
  /** Local clock minus server clock plus the fastest recent delivery, ms. */
  readonly offsetMs: number;
  baselineTicks(): number[];
  get(id: number): Entity | undefined;
  entities(): Entity[];
  /** Applies one tick; throws ProtocolError (`stale_tick`, `delta`) and is then unchanged. */
  apply(header: { tick: number; baseline: number | null; server_time_us: number }, state: Uint8Array | JsonState, arrivedMs?: number): Snapshot;
  /** The entities to draw at `nowMs`, interpolated between the two states around it. */
  interpolate(nowMs: number, options?: { delayPeriods?: number; maxJump?: number }): Interpolated;
  reset(): void;
}

/** The entities of `to` with their fixed fields interpolated from `from` by `alpha`. */
export function lerpStates(from: Snapshot, to: Snapshot, alpha: number, maxJump?: number): Entity[];

// ---- the client ---------------------------------------------------------------------

export class Emitter {
  on(name: string, fn: (value: any) => void): () => void;
  once(name: string, fn: (value: any) => void): () => void;
  off(name: string, fn: (value: any) => void): void;
  listens(name: string): boolean;
  emit(name: string, value?: unknown): void;
}

export interface TickEvent {
  tick: number;
  baseline: number | null;
  serverTimeUs: number;
  /** The newest input seq of this player the tick includes. */
  inputSeq: number;
  /** The message's payload bytes. */
  bytes: number;
  snapshot: Snapshot;
}
export interface CloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
  /** Whether the client reconnects (a retryable code, reconnection on, not closed by the caller). */
  willReconnect: boolean;
}
export interface SentInput {
  seq: number;
  values: Record<string, number | Float>;
  quantized: number[];
  sentAtMs: number;
}

export interface ClientEvents {
  open: { url: string; protocol: string };
  welcome: Welcome;
  joined: Joined;
  watching: Watching;
  left: { room_id: string; reason: string };
  tick: TickEvent;
  indication: Indication;
  player_joined: Extract<Indication, { type: "player_joined" }>;
  player_left: Extract<Indication, { type: "player_left" }>;
  player_disconnected: Extract<Indication, { type: "player_disconnected" }>;
  player_reconnected: Extract<Indication, { type: "player_reconnected" }>;
  room_closing: Extract<Indication, { type: "room_closing" }>;
  game_event: Extract<Indication, { type: "game_event" }>;
  redirect: Extract<Confirm, { type: "redirect" }>;
  close: CloseEvent;
  reconnecting: { attempt: number; delayMs: number };
  reconnected: { resumed: boolean; joined: Joined | null };
  reconnect_failed: { attempts: number };
  /** Anything the server sent that could not be used, a server `error` indication, a listener that threw. */
  error: Error;
}

export interface ClientOptions {
  /** The `ws://` or `wss://` URL of `/ws`. */
  url: string;
  /** The subprotocol: `bin` (default) or `json`. */
  format?: Format;
  /** The WebSocket constructor (default the global one; in Node 20, `ws`'s). */
  WebSocket?: new (url: string, protocols?: string[]) => any;
  /** Sent in `hello` on every connection. */
  token?: string;
  /** Sent in `hello` as `client`. */
  clientName?: string;
  /** A request with no answer fails with a TimeoutError after this long (default 10000). */
  requestTimeoutMs?: number;
  /** Ack every applied tick that no input carried an ack for (default true). */
  autoAck?: boolean;
  /** Follow `redirect` to the server holding the seat (default true). */
  followRedirects?: boolean;
  /** Reconnection after a retryable close (default on: 8 attempts, 200 ms doubling to 3 s). */
  reconnect?: false | { attempts?: number; initialDelayMs?: number; maxDelayMs?: number; codes?: number[] };
  /** States kept for interpolation (default 8). */
  history?: number;
}

export const RETRYABLE_CLOSES: readonly number[];

/** A connection to a tickforge server. */
export class Client extends Emitter {
  constructor(options: ClientOptions);
  on<K extends keyof ClientEvents>(name: K, fn: (value: ClientEvents[K]) => void): () => void;
  once<K extends keyof ClientEvents>(name: K, fn: (value: ClientEvents[K]) => void): () => void;

  url: string;
  readonly format: Format;
  readonly status: "idle" | "connecting" | "open" | "reconnecting" | "closed";
  readonly welcome: Welcome | null;
  readonly joined: Joined | null;
  readonly watching: Watching | null;
  /** The room's states, or null before the first join. */
  readonly state: StateStore | null;
  /** The newest input seq sent. */
  readonly inputSeq: number;
  /** The newest input_seq a tick reported. */
  readonly serverInputSeq: number;
  readonly stats: { messagesIn: number; bytesIn: number; ticks: number; tickBytes: number; decodeErrors: number; deltaErrors: number; staleTicks: number };
  /** The room's input schema, or null. */
  readonly inputSchema: InputSchema | null;
  /** Inputs no tick has reported yet, oldest first (for client-side prediction). */
  readonly pendingInputs: SentInput[];
  /** The player's own avatar in the newest state. */
  readonly self: Entity | undefined;
  /** The underlying WebSocket while one is open. */
  readonly ws: any;

  /** Opens the connection (and sends hello when a token or client name is set). */
  connect(): Promise<void>;
  /** Closes the connection; no reconnection follows. */
  close(code?: number, reason?: string): Promise<void>;
  /** Sends a request: resolves with the cfm body; rejects with RejectError, ClosedError or TimeoutError. */
  request<T extends Confirm = Confirm>(body: Request, options?: { timeoutMs?: number }): Promise<T>;
  hello(options?: { token?: string; client?: string }): Promise<Welcome>;
  listRooms(options?: { game?: string; filter?: ValueMap }): Promise<RoomInfo[]>;
  createRoom(game: string, options?: { maxPlayers?: number; tickHz?: number; private?: boolean; options?: ValueMap }): Promise<Joined>;
  joinRoom(roomId: string, options?: { reservation?: string }): Promise<Joined>;
  joinOrCreate(game: string, options?: { options?: ValueMap }): Promise<Joined>;
  watch(roomId: string): Promise<Watching>;
  resume(roomId: string, resumeToken: string): Promise<Joined>;
  leave(): Promise<{ type: "left"; room_id: string }>;
  gameMessage(name: string, data: Value): Promise<Value>;
  ping(): Promise<{ rttMs: number; clientTimeUs: number; serverTimeUs: number }>;
  /** Sends one input by field name, acking the newest tick; returns its seq (0 with no open connection). Throws InputError. */
  sendInput(values: Record<string, number | Float>): number;
  /** Acks the newest applied tick now. */
  ack(): boolean;
}

// ---- errors -------------------------------------------------------------------------

export class TickforgeError extends Error {}
export class RejectError extends TickforgeError {
  readonly code: RejectCode;
  readonly reason: string;
  readonly requestId: number | undefined;
  readonly requestType: string | undefined;
}
export class ServerError extends TickforgeError {
  readonly code: RejectCode;
  readonly reason: string;
}
export class ClosedError extends TickforgeError {
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
}
export class TimeoutError extends TickforgeError {
  readonly requestType: string;
  readonly timeoutMs: number;
}
export class ConnectError extends TickforgeError {
  readonly url: string;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
}
export class DecodeError extends TickforgeError {
  readonly detail: string;
  readonly id: number | undefined;
  readonly unsupported: string | undefined;
}
export class DeltaError extends TickforgeError {
  readonly kind:
    | "missing_baseline"
    | "truncated"
    | "bad_varint"
    | "trailing_bytes"
    | "unordered_ids"
    | "unknown_entity"
    | "duplicate_entity"
    | "unknown_kind"
    | "unknown_field"
    | "bad_value"
    | "missing_fields"
    | "json"
    | "too_many_entities";
}
export class ValueError extends TickforgeError {
  readonly kind: "too_deep" | "too_large" | "string_too_long" | "non_finite" | "reserved_key" | "bad_base64" | "not_a_map" | "malformed";
}
export class InputError extends TickforgeError {
  readonly kind: "missing" | "out_of_range" | "wrong_type" | "unknown_field" | "bad_varint" | "trailing_bytes" | "no_schema";
  readonly field: string | undefined;
}
export class SchemaError extends TickforgeError {}
export class ProtocolError extends TickforgeError {
  readonly kind: "decode" | "delta" | "stale_tick" | "tick_outside_room" | "schema";
  readonly tick: number | undefined;
  readonly cause?: unknown;
}
