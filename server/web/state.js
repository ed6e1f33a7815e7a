// The page's pure helpers: the stick from held keys, frame sizes, close
// code names, the WebSocket URL, the form and the view a page address asks
// for. No DOM, no sockets, no clocks, so Node's test runner checks them
// (tests/browser/state.test.mjs). The room's state, its deltas and
// interpolation are the client library's (clients/js, served at /client/).

/** The games the page draws on its canvas; any other is shown as a table of entities. */
export const DRAWN_GAMES = Object.freeze(["arena"]);

/**
 * The wire form a page address asks for: `?json` (or `?format=json`) keeps
 * the readable `tickforge.v1.json`; the default is `tickforge.v1.bin`.
 * @param {URLSearchParams} params
 * @returns {"bin" | "json"}
 */
export function formatFor(params) {
  if (params.has("json") || params.get("format") === "json") return "json";
  return "bin";
}

/**
 * How to show a room: `canvas` for a game the page knows how to draw (with
 * x and y fields), `table` for any other, or when `?view=table` asks.
 * @param {string} game
 * @param {{fields: {name: string}[]}} schema
 * @param {URLSearchParams} params
 * @returns {"canvas" | "table"}
 */
export function viewFor(game, schema, params) {
  if (params.get("view") === "table") return "table";
  const names = new Set((schema?.fields ?? []).map((f) => f.name));
  return DRAWN_GAMES.includes(game) && names.has("x") && names.has("y") ? "canvas" : "table";
}

/**
 * The stick value for the keys held: -127..127 per axis, diagonals scaled to
 * the same length. `held` has the logical directions pressed.
 * @param {{left: boolean, right: boolean, up: boolean, down: boolean}} held
 * @returns {{move_x: number, move_y: number}}
 */
export function stick(held) {
  let x = (held.right ? 1 : 0) - (held.left ? 1 : 0);
  let y = (held.down ? 1 : 0) - (held.up ? 1 : 0);
  const scale = x !== 0 && y !== 0 ? Math.SQRT1_2 : 1;
  return { move_x: Math.round(x * scale * 127), move_y: Math.round(y * scale * 127) };
}

/**
 * The bytes a server-to-client WebSocket frame of `payload` bytes takes on
 * the wire (unmasked header: 2, 4 or 10 bytes), as WORKLOAD.md's "bytes per
 * client-tick" counts them.
 * @param {number} payload
 */
export function frameLength(payload) {
  if (payload < 126) return payload + 2;
  if (payload < 65536) return payload + 4;
  return payload + 10;
}

/** A WebSocket close code's meaning (RFC 6455 and CONTRACT.md). */
export function closeCodeName(code) {
  const names = {
    1000: "normal closure",
    1001: "server going away",
    1002: "protocol error",
    1003: "wrong frame type",
    1005: "no status",
    1006: "abnormal closure (no close frame)",
    1007: "message did not decode",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal server error",
    1015: "TLS handshake failure",
  };
  return names[code] ?? "unknown code";
}

/**
 * The WebSocket URL for a page location: same host and port, ws:// for
 * http: pages and wss:// for https: pages, path /ws.
 * @param {{protocol: string, host: string}} location
 */
export function wsUrlFor(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
