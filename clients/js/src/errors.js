// Every error the library raises or emits: one class per kind of failure,
// each carrying the facts a caller can match on (a reject code, a close
// code, the field that was wrong), never only a message.

/** The base class of every error of this library. */
export class TickforgeError extends Error {
  /**
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A request the server answered with `rej`: `code` is the reject code. */
export class RejectError extends TickforgeError {
  /**
   * @param {string} code the reject code (`room_full`, `not_found`, ...)
   * @param {string} reason the server's reason text
   * @param {{id?: number, type?: string}} [request] the request rejected
   */
  constructor(code, reason, request = {}) {
    super(`${request.type ?? "request"} rejected: ${code}: ${reason}`);
    this.code = code;
    this.reason = reason;
    this.requestId = request.id;
    this.requestType = request.type;
  }
}

/** An `error` indication: the server refused a message that had no request id. */
export class ServerError extends TickforgeError {
  /**
   * @param {string} code the reject code
   * @param {string} reason the server's reason text
   */
  constructor(code, reason) {
    super(`server error: ${code}: ${reason}`);
    this.code = code;
    this.reason = reason;
  }
}

/** The connection closed (or was never open) before a request was answered. */
export class ClosedError extends TickforgeError {
  /**
   * @param {string} message
   * @param {{code?: number, reason?: string}} [close] the close code and reason, when known
   */
  constructor(message, close = {}) {
    super(message);
    this.closeCode = close.code;
    this.closeReason = close.reason;
  }
}

/** A request that got no answer in time. */
export class TimeoutError extends TickforgeError {
  /**
   * @param {string} type the request type
   * @param {number} ms the timeout
   */
  constructor(type, ms) {
    super(`${type} got no answer within ${ms} ms`);
    this.requestType = type;
    this.timeoutMs = ms;
  }
}

/** The WebSocket could not be opened (refused handshake, unreachable server). */
export class ConnectError extends TickforgeError {
  /**
   * @param {string} url
   * @param {{code?: number, reason?: string}} [close]
   */
  constructor(url, close = {}) {
    super(`could not connect to ${url}${close.code ? ` (close ${close.code}${close.reason ? `: ${close.reason}` : ""})` : ""}`);
    this.url = url;
    this.closeCode = close.code;
    this.closeReason = close.reason;
  }
}

/**
 * Bytes or text that are not a message of the protocol (`detail` says
 * why). `id` is the request id when the message was a request whose id
 * could still be read (a server answers it `rej bad_request`).
 */
export class DecodeError extends TickforgeError {
  /**
   * @param {string} detail
   * @param {{id?: number, unsupported?: string}} [facts]
   */
  constructor(detail, facts = {}) {
    super(`malformed message: ${detail}`);
    this.detail = detail;
    this.id = facts.id;
    /** The unknown request type, when that is what was wrong. */
    this.unsupported = facts.unsupported;
  }
}

/**
 * A state delta that cannot be applied. `kind` is the Rust
 * `DeltaError` variant in snake_case: `missing_baseline`, `truncated`,
 * `bad_varint`, `trailing_bytes`, `unordered_ids`, `unknown_entity`,
 * `duplicate_entity`, `unknown_kind`, `unknown_field`, `bad_value`,
 * `missing_fields`, `json`, `too_many_entities`.
 */
export class DeltaError extends TickforgeError {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {object} [facts] the entity id, field, count... involved
   */
  constructor(kind, message, facts = {}) {
    super(message);
    this.kind = kind;
    Object.assign(this, facts);
  }
}

/**
 * A value past one of its bounds, or not a value at all. `kind`:
 * `too_deep`, `too_large`, `string_too_long`, `non_finite`,
 * `reserved_key`, `bad_base64`, `not_a_map`, `malformed`.
 */
export class ValueError extends TickforgeError {
  /**
   * @param {string} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Input values that do not fit the room's input schema. `kind`:
 * `missing`, `out_of_range`, `wrong_type`, `unknown_field`, `bad_varint`,
 * `trailing_bytes`, `no_schema`; `field` names the field.
 */
export class InputError extends TickforgeError {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {string} [field]
   */
  constructor(kind, message, field) {
    super(message);
    this.kind = kind;
    this.field = field;
  }
}

/** A schema (entity or input) the library cannot use. */
export class SchemaError extends TickforgeError {}

/**
 * A server message the client could not use; the client drops it and
 * stays usable. `kind`: `decode` (not a message: `cause` is a
 * DecodeError), `delta` (a tick whose state does not apply: `cause` is a
 * DeltaError), `stale_tick`, `tick_outside_room`, `schema`.
 */
export class ProtocolError extends TickforgeError {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {{cause?: unknown, tick?: number}} [facts]
   */
  constructor(kind, message, facts = {}) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.kind = kind;
    this.tick = facts.tick;
  }
}
