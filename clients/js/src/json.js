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

const WS = new Uint8Array(128);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;

/**
 * Parses JSON text exactly (see the module docs). Objects are plain
 * objects (a `__proto__` key is an own property); a key given twice keeps
 * the last value.
 * @param {string} text
 * @returns {unknown}
 * @throws {DecodeError} for text that is not one JSON value
 */
export function parseJson(text) {
  let i = 0;
  const n = text.length;
  const fail = (what) => {
    throw new DecodeError(`${what} at character ${i} of the JSON text`);
  };
  const skip = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 128 && WS[c]) i++;
      else break;
    }
  };
  const parseString = () => {
    // text[i] === '"'
    i++;
    let start = i;
    let out = "";
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c === 0x5c) {
        out += text.slice(start, i);
        i++;
        const e = text[i++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case "\\":
            out += "\\";
            break;
          case "/":
            out += "/";
            break;
          case "b":
            out += "\b";
            break;
          case "f":
            out += "\f";
            break;
          case "n":
            out += "\n";
            break;
          case "r":
            out += "\r";
            break;
          case "t":
            out += "\t";
            break;
          case "u": {
            const hex = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
            let code = parseInt(hex, 16);
            i += 4;
            if (code >= 0xd800 && code <= 0xdbff) {
              // serde_json wants a high surrogate followed by its low one.
              const low = text.slice(i, i + 6);
              if (!/^\\u[dD][c-fC-F][0-9a-fA-F]{2}$/.test(low)) fail("lone surrogate in a \\u escape");
              code = 0x10000 + ((code - 0xd800) << 10) + (parseInt(low.slice(2), 16) - 0xdc00);
              i += 6;
            } else if (code >= 0xdc00 && code <= 0xdfff) {
              fail("lone surrogate in a \\u escape");
            }
            out += String.fromCodePoint(code);
            break;
          }
          default:
            fail("bad escape");
        }
        start = i;
        continue;
      }
      if (c < 0x20) fail("control character in a string");
      i++;
    }
  };
  const parseNumber = () => {
    const start = i;
    let isFloat = false;
    if (text[i] === "-") i++;
    if (text[i] === "0") {
      i++;
    } else if (text[i] >= "1" && text[i] <= "9") {
      while (text[i] >= "0" && text[i] <= "9") i++;
    } else fail("bad number");
    if (text[i] === ".") {
      isFloat = true;
      i++;
      if (!(text[i] >= "0" && text[i] <= "9")) fail("bad number");
      while (text[i] >= "0" && text[i] <= "9") i++;
    }
    if (text[i] === "e" || text[i] === "E") {
      isFloat = true;
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      if (!(text[i] >= "0" && text[i] <= "9")) fail("bad number");
      while (text[i] >= "0" && text[i] <= "9") i++;
    }
    return numberValue(text.slice(start, i), isFloat);
  };
  // Nesting is bounded like serde_json's recursion limit (128).
  const parseValue = (depth) => {
    skip();
    if (i >= n) fail("unexpected end");
    const c = text[i];
    if (c === "{") {
      if (depth >= 128) fail("recursion limit exceeded");
      i++;
      const obj = {};
      skip();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail("expected a key");
        const key = parseString();
        skip();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        const v = parseValue(depth + 1);
        if (key === "__proto__") Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        else obj[key] = v;
        skip();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      if (depth >= 128) fail("recursion limit exceeded");
      i++;
      const arr = [];
      skip();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skip();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (c === "t" && text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (c === "f" && text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (c === "n" && text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    return parseNumber();
  };
  const v = parseValue(0);
  skip();
  if (i < n) fail("trailing characters");
  return v;
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
