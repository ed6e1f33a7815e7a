// The client: one WebSocket to a tickforge server, every request as a
// promise, indications as events, the room's state kept from its ticks,
// acks and inputs sent as the protocol wants, and reconnection that takes
// the seat back with its resume token.
//
// Nothing the server sends can throw into the caller: a message that does
// not decode, a tick that does not apply, a listener that throws, all
// become `error` events, and the client stays usable.

import { utf8Length } from "./bincode.js";
import { Emitter } from "./emitter.js";
import { ClosedError, ConnectError, InputError, ProtocolError, RejectError, ServerError, TimeoutError } from "./errors.js";
import { SUBPROTOCOLS, decodeServer, encodeClient } from "./messages.js";
import { checkInputSchema, inputData, quantizeInput } from "./schema.js";
import { StateStore } from "./store.js";
import { checkMap, checkValue } from "./value.js";

/** Close codes after which the client reconnects by default. */
export const RETRYABLE_CLOSES = Object.freeze([1001, 1005, 1006, 1011, 1012, 1013, 1014]);

/** Inputs kept while the server has not reported them in a tick. */
const MAX_PENDING_INPUTS = 512;

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

/** The reconnection settings, filled in. */
function reconnectOptions(r) {
  if (r === false) return { enabled: false, attempts: 0, initialDelayMs: 0, maxDelayMs: 0, codes: [] };
  return {
    enabled: true,
    attempts: r?.attempts ?? 8,
    initialDelayMs: r?.initialDelayMs ?? 200,
    maxDelayMs: r?.maxDelayMs ?? 3000,
    codes: r?.codes ?? RETRYABLE_CLOSES,
  };
}

/**
 * A connection to a tickforge server.
 *
 * ```js
 * const client = new Client({ url: "ws://127.0.0.1:7700/ws" });
 * await client.connect();
 * const joined = await client.joinOrCreate("arena");
 * client.on("tick", () => draw(client.state.interpolate(performance.now())));
 * client.sendInput({ move_x: 127, move_y: 0, buttons: 0 });
 * ```
 */
export class Client extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.url the `ws://` or `wss://` URL of `/ws`
   * @param {"bin" | "json"} [options.format] the subprotocol (default `bin`)
   * @param {Function} [options.WebSocket] the WebSocket constructor (default the global one; in Node, `ws`'s)
   * @param {string} [options.token] sent in `hello` on every connection
   * @param {string} [options.clientName] sent in `hello` as `client`
   * @param {number} [options.requestTimeoutMs] a request with no answer fails after this (default 10 s)
   * @param {boolean} [options.autoAck] ack every applied tick no input carried (default true)
   * @param {boolean} [options.followRedirects] follow a `redirect` to the server holding the seat (default true)
   * @param {false | {attempts?: number, initialDelayMs?: number, maxDelayMs?: number, codes?: number[]}} [options.reconnect]
   * @param {number} [options.history] states kept for interpolation (default 8)
   */
  constructor(options) {
    super();
    if (!options || typeof options.url !== "string") throw new TypeError("Client needs options.url");
    this.url = options.url;
    this.format = options.format ?? "bin";
    if (this.format !== "bin" && this.format !== "json") throw new TypeError(`format is "bin" or "json", not ${JSON.stringify(this.format)}`);
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") throw new TypeError("no WebSocket: pass options.WebSocket (in Node: the ws package's)");
    this.token = options.token;
    this.clientName = options.clientName;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.autoAck = options.autoAck ?? true;
    this.followRedirects = options.followRedirects ?? true;
    this.reconnect = reconnectOptions(options.reconnect);
    this.historySize = options.history;

    /** `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
    this.status = "idle";
    /** The server's `welcome`, once `hello` was answered. */
    this.welcome = null;
    /** The room this client plays in (its `joined`), or null. */
    this.joined = null;
    /** The room this client watches (its `watching`), or null. */
    this.watching = null;
    /** The room's states, or null outside a room. */
    this.state = null;
    /** The newest input `seq` sent. */
    this.inputSeq = 0;
    /** The newest `input_seq` a tick reported: inputs up to it are in the server's state. */
    this.serverInputSeq = 0;
    /** Figures: messages and bytes received, ticks applied, errors. */
    this.stats = { messagesIn: 0, bytesIn: 0, ticks: 0, tickBytes: 0, decodeErrors: 0, deltaErrors: 0, staleTicks: 0 };

    this.ws = null;
    this.nextId = 1;
    /** @type {Map<number, {type: string, resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    /** @type {{seq: number, values: Record<string, number>, quantized: number[], sentAtMs: number}[]} */
    this.sentInputs = [];
    this.lastAck = null;
    this.ackQueued = false;
    this.closing = false;
    this.lastJoin = null;
    this.attempt = 0;
    this.reconnecting = false;
    this.reconnectTimer = null;
  }

  // ---- connecting -----------------------------------------------------------------

  /**
   * Opens the connection (and sends `hello` when a token or client name is
   * set). Resolves once usable; rejects with a ConnectError when the
   * handshake fails, or the `hello`'s RejectError.
   * @returns {Promise<void>}
   */
  async connect() {
    if (this.status === "open") return;
    if (this.ws) throw new ClosedError("a connection is already being opened");
    this.closing = false;
    await this.open();
    await this.greet();
  }

  /** Opens one socket; resolves on open, rejects with ConnectError. Never while another is open. */
  open() {
    if (this.ws) return Promise.reject(new ClosedError("a connection is already open"));
    this.status = this.status === "reconnecting" ? "reconnecting" : "connecting";
    const subprotocol = SUBPROTOCOLS[this.format];
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocket(this.url, [subprotocol]);
      } catch (e) {
        reject(new ConnectError(this.url, { reason: e.message }));
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        if (ws.protocol !== subprotocol) {
          // The server chose another form: this client cannot read it.
          ws.onclose = null;
          ws.close(1002, "wrong subprotocol");
          this.ws = null;
          reject(new ConnectError(this.url, { reason: `the server answered subprotocol ${JSON.stringify(ws.protocol)}, not ${subprotocol}` }));
          return;
        }
        opened = true;
        this.status = "open";
        this.emit("open", { url: this.url, protocol: ws.protocol });
        resolve();
      };
      ws.onmessage = (ev) => {
        if (ws === this.ws) this.onMessage(ev.data);
      };
      ws.onerror = () => {
        // The close that follows says what is known.
      };
      ws.onclose = (ev) => {
        if (ws !== this.ws) return;
        this.ws = null;
        if (!opened) {
          reject(new ConnectError(this.url, { code: ev.code, reason: ev.reason }));
          if (this.status !== "reconnecting") this.status = "closed";
          return;
        }
        this.onClose(ev);
      };
    });
  }

  async greet() {
    if (this.token === undefined && this.clientName === undefined) return;
    const body = { type: "hello" };
    if (this.token !== undefined) body.token = this.token;
    if (this.clientName !== undefined) body.client = this.clientName;
    this.welcome = await this.request(body);
    this.emit("welcome", this.welcome);
  }

  /**
   * Closes the connection (no reconnection follows). Resolves once closed.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "bye") {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.reconnecting = false;
    const ws = this.ws;
    if (!ws) {
      this.status = "closed";
      this.leaveRoom("closed");
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.once("close", () => resolve());
      try {
        ws.close(code, reason);
      } catch {
        this.onClose({ code: 1006, reason: "", wasClean: false });
      }
    });
  }

  onClose(ev) {
    const code = ev.code ?? 1006;
    const reason = ev.reason ?? "";
    this.status = "closed";
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClosedError(`the connection closed (${code}${reason ? ` ${reason}` : ""}) before ${p.type} was answered`, { code, reason }));
      this.pending.delete(id);
    }
    const willReconnect = !this.closing && this.reconnect.enabled && this.reconnect.codes.includes(code);
    this.emit("close", { code, reason, wasClean: Boolean(ev.wasClean), willReconnect });
    if (willReconnect) {
      // A connection that dropped again while being taken back keeps
      // counting attempts (and backing off).
      if (!this.reconnecting) this.attempt = 0;
      this.scheduleReconnect();
    } else {
      this.leaveRoom("connection closed");
    }
  }

  scheduleReconnect() {
    // One timer at a time: the next attempt opens the one socket.
    if (this.reconnectTimer !== null) return;
    this.reconnecting = true;
    if (this.attempt >= this.reconnect.attempts) {
      this.reconnecting = false;
      this.status = "closed";
      const error = new ClosedError(`gave up reconnecting to ${this.url} after ${this.attempt} attempts`);
      this.leaveRoom("connection lost");
      this.emit("error", error);
      this.emit("reconnect_failed", { attempts: this.attempt });
      return;
    }
    const delayMs = Math.min(this.reconnect.maxDelayMs, this.reconnect.initialDelayMs * 2 ** this.attempt);
    this.attempt += 1;
    this.status = "reconnecting";
    this.emit("reconnecting", { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closing) return;
      this.reconnectOnce().catch((e) => {
        if (this.closing) return;
        if (e instanceof ConnectError || e instanceof ClosedError) {
          // The socket did not open (or closed again, which scheduled the
          // next attempt already): try again.
          if (!this.ws) this.scheduleReconnect();
        } else {
          this.reconnecting = false;
          this.emit("error", e);
        }
      });
    }, delayMs);
  }

  /**
   * One reconnection: open, `hello`, then take the seat back with
   * `resume`, or join afresh (the room by id, then the original request),
   * or watch again.
   */
  async reconnectOnce() {
    await this.open();
    await this.greet();
    const joined = this.joined;
    const watching = this.watching;
    let result = null;
    let resumed = false;
    if (joined && joined.resume_token) {
      try {
        result = await this.request({ type: "resume", room_id: joined.room_id, resume_token: joined.resume_token });
        resumed = true;
      } catch (e) {
        if (!(e instanceof RejectError)) throw e;
      }
    }
    if (!resumed && joined) result = await this.rejoin(joined);
    if (!resumed && !joined && watching) {
      try {
        result = await this.request({ type: "watch_room", room_id: watching.room_id });
      } catch (e) {
        if (!(e instanceof RejectError)) throw e;
        this.leaveRoom(`could not watch room ${watching.room_id} again: ${e.code}`);
        this.emit("error", e);
      }
    }
    this.attempt = 0;
    this.reconnecting = false;
    this.emit("reconnected", { resumed, joined: result?.type === "joined" ? result : null });
  }

  /** A fresh join after a lost seat: the room by id, else the request that found it. */
  async rejoin(joined) {
    const tries = [{ type: "join_room", room_id: joined.room_id }];
    const first = this.lastJoin;
    if (first && (first.type === "join_or_create" || (first.type === "join_room" && first.room_id !== joined.room_id))) tries.push(first);
    let last;
    for (const body of tries) {
      try {
        return await this.join(body);
      } catch (e) {
        if (!(e instanceof RejectError)) throw e;
        last = e;
      }
    }
    this.leaveRoom(`could not rejoin room ${joined.room_id}: ${last.code}`);
    this.emit("error", last);
    return null;
  }

  // ---- requests ----------------------------------------------------------------------

  /**
   * Sends a request; resolves with the `cfm` body, rejects with a
   * RejectError (the `rej`), a ClosedError or a TimeoutError.
   * @param {{type: string}} body
   * @param {{timeoutMs?: number}} [options]
   */
  request(body, { timeoutMs = this.requestTimeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const ws = this.ws;
      if (!ws || this.status === "connecting" || ws.readyState !== 1) {
        reject(new ClosedError(`not connected: cannot send ${body?.type}`));
        return;
      }
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      let frame;
      try {
        frame = encodeClient(this.format, { type: "req", id, body });
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new TimeoutError(body.type, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { type: body.type, body, resolve, reject, timer });
      ws.send(frame);
    });
  }

  /** `hello`: resolves with `welcome`. */
  hello({ token, client } = {}) {
    const body = { type: "hello" };
    if (token !== undefined) body.token = token;
    if (client !== undefined) body.client = client;
    return this.request(body);
  }

  /** The public rooms (of one game, matching a metadata filter). Resolves with the rows. */
  async listRooms({ game, filter } = {}) {
    const body = { type: "list_rooms" };
    if (game !== undefined) body.game = game;
    if (filter !== undefined) {
      checkMap(filter);
      body.filter = filter;
    }
    return (await this.request(body)).rooms;
  }

  /** Creates a room of `game` and joins it. Resolves with `joined`. */
  createRoom(game, { maxPlayers, tickHz, private: isPrivate = false, options } = {}) {
    const body = { type: "create_room", game, private: isPrivate };
    if (maxPlayers !== undefined) body.max_players = maxPlayers;
    if (tickHz !== undefined) body.tick_hz = tickHz;
    if (options !== undefined) {
      checkMap(options);
      body.options = options;
    }
    return this.join(body);
  }

  /** Joins room `roomId` (with a reservation after a redirect). Resolves with `joined`. */
  joinRoom(roomId, { reservation } = {}) {
    const body = { type: "join_room", room_id: roomId };
    if (reservation !== undefined) body.reservation = reservation;
    return this.join(body);
  }

  /** Joins the fullest public room of `game` created with equal options, else creates one. Resolves with `joined`. */
  joinOrCreate(game, { options } = {}) {
    const body = { type: "join_or_create", game };
    if (options !== undefined) {
      checkMap(options);
      body.options = options;
    }
    return this.join(body);
  }

  /** Watches room `roomId` as a spectator. Resolves with `watching`. */
  watch(roomId) {
    return this.request({ type: "watch_room", room_id: roomId });
  }

  /** Takes a held seat back on this connection. Resolves with `joined`. */
  resume(roomId, resumeToken) {
    return this.request({ type: "resume", room_id: roomId, resume_token: resumeToken });
  }

  /** Leaves the room (or stops watching). Resolves with `left`. */
  leave() {
    return this.request({ type: "leave_room" });
  }

  /** Sends a message to the room's game. Resolves with the reply's `data`. */
  async gameMessage(name, data) {
    checkValue(data);
    return (await this.request({ type: "game_message", name, data })).data;
  }

  /** Measures the round trip. Resolves with `{rttMs, clientTimeUs, serverTimeUs}`. */
  async ping() {
    const sent = now();
    const pong = await this.request({ type: "ping", client_time_us: Math.floor(Date.now() * 1000) });
    return { rttMs: now() - sent, clientTimeUs: pong.client_time_us, serverTimeUs: pong.server_time_us };
  }

  /** A join request, following a `redirect` to the server that holds the seat. */
  async join(body) {
    if (body.type !== "join_room" || !body.reservation) this.lastJoin = body;
    const answer = await this.request(body);
    if (answer.type !== "redirect") return answer;
    if (!this.followRedirects) return answer;
    this.emit("redirect", answer);
    await this.moveTo(answer.url);
    return this.join({ type: "join_room", room_id: answer.room_id, reservation: answer.reservation });
  }

  /** Closes this connection and opens one to `url` (never two at once). */
  async moveTo(url) {
    const ws = this.ws;
    if (ws) {
      await new Promise((resolve) => {
        ws.onclose = () => resolve();
        ws.close(1000, "redirected");
      });
      this.ws = null;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new ClosedError(`the connection moved to ${url} before ${p.type} was answered`, { code: 1000, reason: "redirected" }));
        this.pending.delete(id);
      }
    }
    this.url = url;
    await this.open();
    await this.greet();
  }

  // ---- inputs and acks -------------------------------------------------------------------

  /** The room's input schema (from `joined` or `watching`), or null. */
  get inputSchema() {
    return (this.joined ?? this.watching)?.input_schema ?? null;
  }

  /**
   * Sends one input: `values` by field name (`{move_x: 10, move_y: -5,
   * buttons: 1}`; real numbers for `fixed` fields), acking the newest
   * applied tick. Returns its `seq`, or 0 when there is no open connection.
   * @throws {InputError} for values that do not fit the room's input schema (a bug of the caller)
   */
  sendInput(values) {
    const schema = this.inputSchema;
    if (!schema || !this.joined) throw new InputError("no_schema", "no input schema: not in a room as a player");
    const quantized = quantizeInput(schema, values);
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return 0;
    const seq = this.inputSeq >= 0xffffffff ? 1 : this.inputSeq + 1;
    const ack = this.state?.tick ?? undefined;
    const msg = { type: "input", seq, data: inputData(this.format, schema, quantized) };
    if (ack !== undefined) msg.ack = ack;
    ws.send(encodeClient(this.format, msg));
    this.inputSeq = seq;
    if (ack !== undefined) this.lastAck = ack;
    this.sentInputs.push({ seq, values, quantized, sentAtMs: now() });
    if (this.sentInputs.length > MAX_PENDING_INPUTS) this.sentInputs.shift();
    return seq;
  }

  /**
   * The inputs sent that no tick has reported yet (`seq` above the newest
   * tick's `input_seq`), oldest first: what client-side prediction applies
   * on top of the server's state.
   */
  get pendingInputs() {
    return this.sentInputs.filter((i) => i.seq > this.serverInputSeq);
  }

  /** Acks the newest applied tick now (the client does it by itself with `autoAck`). */
  ack() {
    const tick = this.state?.tick;
    const ws = this.ws;
    if (tick === null || tick === undefined || !ws || ws.readyState !== 1) return false;
    ws.send(encodeClient(this.format, { type: "ack", tick }));
    this.lastAck = tick;
    return true;
  }

  /** The player's own avatar in the newest state, or undefined. */
  get self() {
    return this.joined && this.state ? this.state.get(this.joined.entity_id) : undefined;
  }

  // ---- receiving --------------------------------------------------------------------------

  onMessage(data) {
    try {
      this.handle(data);
    } catch (e) {
      // A bug of ours or of a listener: reported, never thrown at the socket.
      this.emit("error", e);
    }
  }

  handle(data) {
    this.stats.messagesIn += 1;
    const textFrame = typeof data === "string";
    const size = textFrame ? utf8Length(data) : data.byteLength ?? data.length ?? 0;
    this.stats.bytesIn += size;
    let msg;
    try {
      if (textFrame !== (this.format === "json")) {
        throw new ProtocolError("decode", `a ${textFrame ? "text" : "binary"} frame on the ${SUBPROTOCOLS[this.format]} subprotocol`);
      }
      msg = decodeServer(this.format, data);
    } catch (e) {
      this.stats.decodeErrors += 1;
      this.emit("error", e instanceof ProtocolError ? e : new ProtocolError("decode", `undecodable server message: ${e.message}`, { cause: e }));
      return;
    }
    switch (msg.type) {
      case "tick":
        this.onTick(msg, size);
        return;
      case "cfm":
        this.onConfirm(msg);
        return;
      case "rej": {
        const p = this.take(msg.id);
        const error = new RejectError(msg.code, msg.reason, { id: msg.id, type: p?.type });
        if (p) p.reject(error);
        else this.emit("error", error);
        return;
      }
      default:
        this.onIndication(msg.body);
    }
  }

  take(id) {
    const p = this.pending.get(id);
    if (!p) return null;
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  onConfirm(msg) {
    const body = msg.body;
    const p = this.take(msg.id);
    try {
      if (body.type === "joined" || body.type === "watching") this.enterRoom(body);
      else if (body.type === "left") this.leaveRoom("left", body.room_id);
    } catch (e) {
      // An unusable schema: the room cannot be read.
      const error = new ProtocolError("schema", `room ${body.room_id}: ${e.message}`, { cause: e });
      if (p) p.reject(error);
      else this.emit("error", error);
      return;
    }
    if (p) p.resolve(body);
    if (body.type === "joined" || body.type === "watching") this.emit(body.type, body);
  }

  enterRoom(body) {
    checkInputSchema(body.input_schema);
    const state = new StateStore({ schema: body.schema, tickHz: body.tick_hz, format: this.format, history: this.historySize });
    this.state = state;
    this.joined = body.type === "joined" ? body : null;
    this.watching = body.type === "watching" ? body : null;
    this.serverInputSeq = 0;
    this.sentInputs = [];
    this.lastAck = null;
  }

  leaveRoom(reason, roomId) {
    const room = this.joined ?? this.watching;
    if (!room) return;
    this.joined = null;
    this.watching = null;
    this.sentInputs = [];
    this.emit("left", { room_id: roomId ?? room.room_id, reason });
  }

  onIndication(body) {
    if (body.type === "room_closing") this.leaveRoom(`room closing: ${body.reason}`);
    this.emit("indication", body);
    if (body.type === "error") this.emit("error", new ServerError(body.code, body.reason));
    else this.emit(body.type, body);
  }

  onTick(msg, size) {
    const state = this.state;
    if (!state || !(this.joined || this.watching)) {
      this.emit("error", new ProtocolError("tick_outside_room", `tick ${msg.tick} while in no room`, { tick: msg.tick }));
      return;
    }
    let snapshot;
    try {
      snapshot = state.apply(msg, msg.state, now());
    } catch (e) {
      if (e instanceof ProtocolError && e.kind === "stale_tick") this.stats.staleTicks += 1;
      else this.stats.deltaErrors += 1;
      this.emit("error", e);
      return;
    }
    this.stats.ticks += 1;
    this.stats.tickBytes = size;
    if (msg.input_seq > this.serverInputSeq || msg.input_seq < this.serverInputSeq - 0x7fffffff) {
      this.serverInputSeq = msg.input_seq;
      while (this.sentInputs.length && this.sentInputs[0].seq <= msg.input_seq) this.sentInputs.shift();
    }
    this.emit("tick", {
      tick: msg.tick,
      baseline: msg.baseline,
      serverTimeUs: msg.server_time_us,
      inputSeq: msg.input_seq,
      bytes: size,
      snapshot,
    });
    if (this.autoAck && !this.ackQueued) {
      this.ackQueued = true;
      // After the tick's listeners: an input they send carries the ack.
      queueMicrotask(() => {
        this.ackQueued = false;
        const tick = this.state?.tick;
        if (tick !== null && tick !== undefined && tick !== this.lastAck) this.ack();
      });
    }
  }
}
