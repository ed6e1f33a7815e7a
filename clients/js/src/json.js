// JSON as the Rust side reads and writes it (serde_json), exactly:
//
// - The parser keeps what JSON.parse loses: whether a number was written as
//   a float (`2.0`, `1e3`) or an integer (`2`), and integers past 2^53.
//   A float token whose value is whole comes back as a `Float` (a number
//   with its type), an integer token past 2^53 as a bigint, an integer
//   token past the 64-bit range as a `Float` (serde_json reads it as f64).
// - `formatFloat` writes a double the way serde_json does: the shortest
//   digits that read back exactly, always with a fraction or an exponent
//   (`11.0`, `0.001`, `1e-6`, `1e+16`, `1.5e+300`).
// - `writeString` escapes as serde_json does (JSON.stringify's rules).

import { DecodeError } from "./errors.js";

/**
 * A float whose type must survive even though its value is whole (`2.0`
 * is a float, `2` an integer in the protocol's values). `valueOf()` makes
 * it usable as a number.
 */
export class Float {
  /** @param {number} value */
  constructor(value) {
    this.value = Number(value);
  }

  valueOf() {
    return this.value;
  }

  toString() {
    return formatFloat(this.value);
  }

  toJSON() {
    return this.value;
  }
}

/** A float value: `float(2)` is the float 2.0 (a plain `2` is an integer). */
export function float(value) {
  return new Float(value);
}

/** A JSON number token's value: number, bigint or Float (see the module docs). */
function numberValue(token, isFloat) {
  if (isFloat) {
    const v = Number(token);
    if (!Number.isFinite(v)) throw new DecodeError(`number out of range: ${token.slice(0, 40)}`);
    return Number.isInteger(v) || Object.is(v, -0) ? new Float(v) : v;
  }
  const v = Number(token);
  if (Number.isSafeInteger(v)) return v;
  const b = BigInt(token);
  if (b >= -(1n << 63n) && b < 1n << 64n) return b;
  // Past both i64 and u64: serde_json reads the literal as an f64.
  return new Float(v);
}

/**
 * Parses JSON text exactly (see the module docs). Objects are plain
 * objects (a `__proto__` key is an own property); a key given twice keeps
 * the last value.
 * @param {string} text
 * @returns {unknown}
 * @throws {DecodeError} for text that is not one JSON value
 */
export function parseJson(text) {
  return new Parser(text).document();
}

// Character codes.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;

const ESCAPES = { 34: '"', 92: "\\", 47: "/", 98: "\b", 102: "\f", 110: "\n", 114: "\r", 116: "\t" };

class Parser {
  constructor(text) {
    this.t = text;
    this.i = 0;
  }

  fail(what) {
    throw new DecodeError(`${what} at character ${this.i} of the JSON text`);
  }

  document() {
    const v = this.value(0);
    this.skip();
    if (this.i < this.t.length) this.fail("trailing characters");
    return v;
  }

  skip() {
    const t = this.t;
    let i = this.i;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  // Nesting is bounded like serde_json's recursion limit (128).
  value(depth) {
    this.skip();
    const t = this.t;
    const c = t.charCodeAt(this.i);
    if (c === 0x7b) return this.object(depth);
    if (c === 0x5b) return this.array(depth);
    if (c === QUOTE) return this.string();
    if (c === 0x74 && t.startsWith("true", this.i)) {
      this.i += 4;
      return true;
    }
    if (c === 0x66 && t.startsWith("false", this.i)) {
      this.i += 5;
      return false;
    }
    if (c === 0x6e && t.startsWith("null", this.i)) {
      this.i += 4;
      return null;
    }
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.number();
    return this.fail(this.i >= t.length ? "unexpected end" : "unexpected character");
  }

  object(depth) {
    if (depth >= 128) this.fail("recursion limit exceeded");
    const t = this.t;
    this.i++;
    const obj = {};
    this.skip();
    if (t.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return obj;
    }
    for (;;) {
      this.skip();
      if (t.charCodeAt(this.i) !== QUOTE) this.fail("expected a key");
      const key = this.string();
      this.skip();
      if (t.charCodeAt(this.i) !== 0x3a) this.fail("expected ':'");
      this.i++;
      const v = this.value(depth + 1);
      if (key === "__proto__") Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
      else obj[key] = v;
      this.skip();
      const c = t.charCodeAt(this.i);
      this.i++;
      if (c === 0x2c) continue;
      if (c === 0x7d) return obj;
      this.i--;
      this.fail("expected ',' or '}'");
    }
  }

  array(depth) {
    if (depth >= 128) this.fail("recursion limit exceeded");
    const t = this.t;
    this.i++;
    const arr = [];
    this.skip();
    if (t.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return arr;
    }
    for (;;) {
      arr.push(this.value(depth + 1));
      this.skip();
      const c = t.charCodeAt(this.i);
      this.i++;
      if (c === 0x2c) continue;
      if (c === 0x5d) return arr;
      this.i--;
      this.fail("expected ',' or ']'");
    }
  }

  string() {
    const t = this.t;
    let i = this.i + 1;
    let start = i;
    let out = "";
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === QUOTE) {
        this.i = i + 1;
        return out + t.slice(start, i);
      }
      if (c === BACKSLASH) {
        out += t.slice(start, i);
        const e = t.charCodeAt(i + 1);
        if (e === 0x75) {
          this.i = i;
          out += this.unicodeEscape();
          i = this.i;
        } else {
          const r = ESCAPES[e];
          if (r === undefined) {
            this.i = i;
            this.fail("bad escape");
          }
          out += r;
          i += 2;
        }
        start = i;
        continue;
      }
      if (c < 0x20 || Number.isNaN(c)) {
        this.i = i;
        this.fail(Number.isNaN(c) ? "unterminated string" : "control character in a string");
      }
      i++;
    }
  }

  /** A \uXXXX escape (a surrogate pair as two) at this.i; leaves this.i after it. */
  unicodeEscape() {
    const t = this.t;
    const hex = t.slice(this.i + 2, this.i + 6);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape");
    let code = parseInt(hex, 16);
    this.i += 6;
    if (code >= 0xd800 && code <= 0xdbff) {
      // serde_json wants a high surrogate followed by its low one.
      const low = t.slice(this.i, this.i + 6);
      if (!/^\\u[dD][c-fC-F][0-9a-fA-F]{2}$/.test(low)) this.fail("lone surrogate in a \\u escape");
      code = 0x10000 + ((code - 0xd800) << 10) + (parseInt(low.slice(2), 16) - 0xdc00);
      this.i += 6;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      this.fail("lone surrogate in a \\u escape");
    }
    return String.fromCodePoint(code);
  }

  number() {
    const t = this.t;
    const start = this.i;
    let i = start;
    let isFloat = false;
    if (t.charCodeAt(i) === MINUS) i++;
    let c = t.charCodeAt(i);
    if (c === ZERO) {
      i++;
    } else if (c > ZERO && c <= NINE) {
      do i++;
      while ((c = t.charCodeAt(i)) >= ZERO && c <= NINE);
    } else {
      this.i = i;
      this.fail("bad number");
    }
    c = t.charCodeAt(i);
    if (c === DOT) {
      isFloat = true;
      i++;
      c = t.charCodeAt(i);
      if (!(c >= ZERO && c <= NINE)) {
        this.i = i;
        this.fail("bad number");
      }
      do i++;
      while ((c = t.charCodeAt(i)) >= ZERO && c <= NINE);
    }
    if (c === 0x65 || c === 0x45) {
      isFloat = true;
      i++;
      c = t.charCodeAt(i);
      if (c === PLUS || c === MINUS) c = t.charCodeAt(++i);
      if (!(c >= ZERO && c <= NINE)) {
        this.i = i;
        this.fail("bad number");
      }
      do i++;
      while ((c = t.charCodeAt(i)) >= ZERO && c <= NINE);
    }
    this.i = i;
    // Short integers: no string to number conversion needed.
    if (!isFloat && i - start < 10) {
      let v = 0;
      let k = start;
      const neg = t.charCodeAt(k) === MINUS;
      if (neg) k++;
      for (; k < i; k++) v = v * 10 + (t.charCodeAt(k) - ZERO);
      return neg ? (v === 0 ? 0 : -v) : v;
    }
    return numberValue(t.slice(start, i), isFloat);
  }
}

/**
 * A double as serde_json writes it (its `zmij` formatter): the shortest
 * digits that read back exactly; plain notation when the leading digit's
 * decimal exponent is in -5..=15 (`11.0`, `0.00001`, `1000000000000000.0`),
 * else `d.ddde±x` (`1e-6`, `1e+16`, `1.5e+300`). Always a fraction or an
 * exponent. The value must be finite.
 * @param {number} v
 */
export function formatFloat(v) {
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const sign = v < 0 ? "-" : "";
  // toExponential() with no argument gives the shortest digits that read
  // back exactly: "d.ddde±x".
  const s = Math.abs(v).toExponential();
  const at = s.indexOf("e");
  const digits = s.slice(0, at).replace(".", "");
  const length = digits.length;
  const e = Number(s.slice(at + 1)); // |v| = d.ddd × 10^e
  let out;
  if (e >= -5 && e <= 15) {
    if (length - 1 <= e) out = `${digits}${"0".repeat(e - (length - 1))}.0`;
    else if (e >= 0) out = `${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
    else out = `0.${"0".repeat(-e - 1)}${digits}`;
  } else {
    out = `${digits[0]}${length > 1 ? `.${digits.slice(1)}` : ""}e${e >= 0 ? "+" : "-"}${Math.abs(e)}`;
  }
  return sign + out;
}

/** A JSON string literal as serde_json writes it. */
export function writeString(s) {
  return JSON.stringify(s);
}

/** An integer (number or bigint) as JSON text. */
export function writeInt(v) {
  return typeof v === "bigint" ? v.toString() : String(v);
}
