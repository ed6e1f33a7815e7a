// bincode 2's standard configuration, as the Rust side writes it: little
// endian, variable-length integers (a value below 251 is one byte, else a
// marker byte 251/252/253 and a u16/u32/u64 little endian), zigzag for
// signed integers, a length before strings and byte vectors, 0/1 before an
// Option's value, an enum's variant index as a u32 varint. PROTOCOL.md
// section 4 is the byte-by-byte description.
//
// Plus the LEB128 varints of the binary state blob (section 8), which are
// not bincode's.

import { DecodeError } from "./errors.js";

const TWO_32 = 4294967296;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U64_MAX = (1n << 64n) - 1n;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 bytes of a string. */
export function utf8(text) {
  return utf8Encoder.encode(text);
}

/** The UTF-8 length of a string, without encoding it when it is ASCII. */
export function utf8Length(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        // A surrogate pair: 4 bytes for 2 UTF-16 units.
        n += 2;
        i += 1;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

/** The length of bincode's varint of `v` (a number or bigint, not negative). */
export function varintLength(v) {
  if (typeof v === "bigint") {
    if (v <= 250n) return 1;
    if (v <= 0xffffn) return 3;
    if (v <= 0xffffffffn) return 5;
    return 9;
  }
  if (v <= 250) return 1;
  if (v <= 0xffff) return 3;
  if (v <= 0xffffffff) return 5;
  return 9;
}

/** Zigzag of an i64 (number within 2^53, or bigint) as a u64 (number or bigint). */
export function zigzag64(v) {
  if (typeof v === "number" && Number.isSafeInteger(v) && Math.abs(v) <= 2 ** 51) {
    return v >= 0 ? v * 2 : -v * 2 - 1;
  }
  const b = BigInt(v);
  return BigInt.asUintN(64, (b << 1n) ^ (b >> 63n));
}

/** The inverse of zigzag64, from a u64 (number or bigint). */
export function unzigzag64(z) {
  if (typeof z === "number") {
    // z <= 2^53: exact in doubles.
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
  const v = (z >> 1n) ^ -(z & 1n);
  return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
}

/** Zigzag of an i32: 0, -1, 1, -2 -> 0, 1, 2, 3 (a u32 as a number). */
export function zigzag32(v) {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

/** The inverse of zigzag32. */
export function unzigzag32(z) {
  return (z >>> 1) ^ -(z & 1);
}

/** A growable byte buffer with bincode's writers. */
export class Writer {
  /** @param {number} [capacity] */
  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
    this.len = 0;
  }

  /** Makes room for `n` more bytes. */
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** One raw byte. */
  u8(v) {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
  }

  /** Raw bytes. */
  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** A bool: one byte, 0 or 1. */
  bool(v) {
    this.u8(v ? 1 : 0);
  }

  /**
   * bincode's varint of an unsigned integer (a number up to 2^53, or a
   * bigint up to 2^64 - 1).
   */
  varint(v) {
    if (typeof v === "bigint") {
      if (v < 0n || v > U64_MAX) throw new RangeError(`${v} is not a u64`);
      if (v <= 0xffffffffn) return this.varint(Number(v));
      this.reserve(9);
      this.buf[this.len++] = 253;
      for (let i = 0n; i < 64n; i += 8n) this.buf[this.len++] = Number((v >> i) & 0xffn);
      return;
    }
    if (!Number.isInteger(v) || v < 0 || v > MAX_SAFE) throw new RangeError(`${v} is not an unsigned integer below 2^53`);
    if (v <= 250) {
      this.u8(v);
    } else if (v <= 0xffff) {
      this.reserve(3);
      this.buf[this.len++] = 251;
      this.buf[this.len++] = v & 0xff;
      this.buf[this.len++] = v >>> 8;
    } else if (v <= 0xffffffff) {
      this.reserve(5);
      this.buf[this.len++] = 252;
      this.u32le(v);
    } else {
      this.reserve(9);
      this.buf[this.len++] = 253;
      this.u32le(v % TWO_32);
      this.u32le(Math.floor(v / TWO_32));
    }
  }

  /** Four bytes little endian (the caller reserved them). */
  u32le(v) {
    this.buf[this.len++] = v & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 24) & 0xff;
  }

  /** A u32, range-checked. */
  u32(v) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${v} is not a u32`);
    this.varint(v);
  }

  /** An i64: zigzag, then the varint. */
  i64(v) {
    this.varint(zigzag64(v));
  }

  /** An f64: eight bytes IEEE 754 little endian. */
  f64(v) {
    this.reserve(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, v, true);
    this.len += 8;
  }

  /** A string: its UTF-8 length, then the bytes. */
  string(s) {
    const b = utf8(s);
    this.varint(b.length);
    this.bytes(b);
  }

  /** A byte vector: its length, then the bytes. */
  byteVec(b) {
    this.varint(b.length);
    this.bytes(b);
  }

  /** The bytes written (a copy). */
  finish() {
    return this.buf.slice(0, this.len);
  }
}

/** A cursor over bytes with bincode's readers; every read is bounds-checked. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.b = bytes;
    this.pos = 0;
  }

  /** Bytes not read yet. */
  get remaining() {
    return this.b.length - this.pos;
  }

  /** Throws a DecodeError saying the message ends early. */
  truncated() {
    throw new DecodeError("the message ends early");
  }

  /** One raw byte. */
  u8() {
    if (this.pos >= this.b.length) this.truncated();
    return this.b[this.pos++];
  }

  /** An i8: one byte, two's complement. */
  i8() {
    return (this.u8() << 24) >> 24;
  }

  /** `n` raw bytes (a view, not a copy). */
  take(n) {
    if (n > this.remaining) this.truncated();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A bool: 0 or 1. */
  bool() {
    const v = this.u8();
    if (v > 1) throw new DecodeError(`invalid bool byte ${v}`);
    return v === 1;
  }

  le(n) {
    if (n > this.remaining) this.truncated();
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.b[this.pos + i];
    this.pos += n;
    return v;
  }

  /** A u32 varint (bincode refuses the u64 and u128 forms for a u32). */
  u32() {
    const m = this.u8();
    if (m < 251) return m;
    if (m === 251) return this.le(2);
    if (m === 252) return this.le(4);
    throw new DecodeError(`varint marker ${m} where a u32 was expected`);
  }

  /** A u16 varint. */
  u16() {
    const m = this.u8();
    if (m < 251) return m;
    if (m === 251) return this.le(2);
    throw new DecodeError(`varint marker ${m} where a u16 was expected`);
  }

  /**
   * A u64 varint as a number or, past 2^53, a bigint.
   * @returns {number | bigint}
   */
  u64Any() {
    const m = this.u8();
    if (m < 251) return m;
    if (m === 251) return this.le(2);
    if (m === 252) return this.le(4);
    if (m === 253) {
      const lo = this.le(4);
      const hi = this.le(4);
      if (hi < 0x200000) return hi * TWO_32 + lo;
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    throw new DecodeError(`varint marker ${m} where a u64 was expected`);
  }

  /** A u64 varint that must fit a JavaScript number exactly (ticks, times). */
  u64() {
    const v = this.u64Any();
    if (typeof v === "bigint") throw new DecodeError(`u64 ${v} is past 2^53, which this client does not support`);
    return v;
  }

  /** A length (a u64 varint) of items of at least `each` bytes, checked against the bytes left. */
  len(each = 1) {
    const n = this.u64Any();
    if (typeof n === "bigint" || n * each > this.remaining) this.truncated();
    return n;
  }

  /** An i64 (zigzag varint): a number within 2^53, else a bigint. */
  i64() {
    return unzigzag64(this.u64Any());
  }

  /** An f64. */
  f64() {
    if (this.remaining < 8) this.truncated();
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** A string: length, then UTF-8. */
  string() {
    return this.utf8(this.take(this.len()));
  }

  /** Decodes UTF-8 bytes, refusing invalid ones. */
  utf8(bytes) {
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new DecodeError("a string is not valid UTF-8");
    }
  }

  /** A byte vector (a copy). */
  byteVec() {
    return this.take(this.len()).slice();
  }

  /** An Option: its tag (0 or 1), then `read()` when present. */
  option(read) {
    const tag = this.u8();
    if (tag === 0) return undefined;
    if (tag !== 1) throw new DecodeError(`invalid Option tag ${tag}`);
    return read();
  }

  /** Refuses bytes after the message. */
  end() {
    if (this.remaining > 0) throw new DecodeError(`${this.remaining} bytes after the message`);
  }
}
