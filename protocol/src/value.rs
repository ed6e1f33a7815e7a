//! The contract's value: what game options, room metadata, game messages
//! and game events carry.
//!
//! A [`Value`] is null, a bool, an integer (i64), a float (f64), a string,
//! bytes, a list or a string-keyed map, bounded so that a value from the
//! network can never make a receiver recurse or allocate without limit:
//! - at most [`MAX_DEPTH`] levels of lists and maps (the outermost counts
//!   as 1; a scalar is 0 levels);
//! - strings, map keys included, at most [`MAX_STRING`] bytes of UTF-8;
//! - the whole value at most [`MAX_SIZE`] bytes in its encoding: the compact
//!   JSON text the encoder writes for it in `tickforge.v1.json`, its binary
//!   encoding in `tickforge.v1.bin` (whitespace or longer number forms a
//!   sender adds do not count);
//! - floats finite (JSON has no NaN or infinity, so neither form carries one);
//! - the map key `"$bytes"` is reserved: in JSON, bytes are written as the
//!   object `{"$bytes":"<base64>"}` (standard alphabet, padded).
//!
//! Both decoders enforce every bound and refuse a value past one with a
//! [`ValueError`]; inside a message that makes the message malformed
//! (`rej bad_request` whose reason names the bound). Encoders write what
//! they are given: a value built in Rust is checked with [`Value::check`]
//! before it is sent.
//!
//! The binary form is a tagged enum, the tag one byte (bincode's variant
//! index): `00` null; `01` bool (+ one byte, 0 or 1); `02` integer (+ i64
//! zigzag varint); `03` float (+ 8 bytes, IEEE 754 little endian); `04`
//! string (+ varint length, UTF-8); `05` bytes (+ varint length, the
//! bytes); `06` list (+ varint count, the items); `07` map (+ varint count,
//! then each key as a string and its value; written in ascending key
//! order). PROTOCOL.md section 11 shows every case.

use base64::Engine as _;
use bincode::de::read::{Reader, SliceReader};
use bincode::de::{Decoder, DecoderImpl};
use bincode::enc::Encoder;
use bincode::error::{DecodeError as BinDecodeError, EncodeError as BinEncodeError};
use bincode::{Decode, Encode};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use thiserror::Error;

/// The most levels of lists and maps in a value (the outermost counts as 1).
pub const MAX_DEPTH: usize = 8;
/// The most bytes of UTF-8 in a string or a map key.
pub const MAX_STRING: usize = 1024;
/// The most bytes a value may take in its encoding (JSON text or binary).
pub const MAX_SIZE: usize = 4096;
/// The JSON key that marks a bytes value, reserved in maps.
pub const BYTES_KEY: &str = "$bytes";

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A value of the contract: see the [module docs](self) for its bounds.
///
/// Equality is structural: an integer never equals a float (`1` is not
/// `1.0`), floats compare by their bits (`-0.0` is not `0.0`), maps
/// compare by content (key order does not exist: keys are sorted).
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null`; binary tag 0.
    #[default]
    Null,
    /// `true` / `false`; binary tag 1.
    Bool(bool),
    /// An integer; binary tag 2 (zigzag varint).
    Int(i64),
    /// A finite float; binary tag 3 (8 bytes little endian).
    Float(f64),
    /// A string of at most [`MAX_STRING`] bytes; binary tag 4.
    String(String),
    /// Bytes; JSON `{"$bytes":"<base64>"}`; binary tag 5.
    Bytes(Vec<u8>),
    /// A list; binary tag 6.
    List(Vec<Self>),
    /// A string-keyed map; binary tag 7.
    Map(BTreeMap<String, Self>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits(),
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            (Self::List(a), Self::List(b)) => a == b,
            (Self::Map(a), Self::Map(b)) => a == b,
            _ => false,
        }
    }
}

// Bitwise float equality is reflexive, so `Eq` holds.
impl Eq for Value {}

/// Why a value was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValueError {
    /// More than [`MAX_DEPTH`] levels of lists and maps.
    #[error("value nested deeper than {max} levels of lists and maps")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// Over [`MAX_SIZE`] bytes in its encoding.
    #[error("value is over the {max}-byte limit")]
    TooLarge {
        /// The bound.
        max: usize,
    },
    /// A string or a map key over [`MAX_STRING`] bytes.
    #[error("string of {len} bytes in a value is over the {max}-byte limit")]
    StringTooLong {
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A NaN or infinite float.
    #[error("float in a value is not finite")]
    NonFinite,
    /// The key `"$bytes"` used other than as the bytes form
    /// `{"$bytes":"<base64>"}` alone.
    #[error("the map key \"$bytes\" is reserved for bytes, written {{\"$bytes\":\"<base64>\"}} alone")]
    ReservedKey,
    /// A `$bytes` text that is not standard padded base64.
    #[error("\"$bytes\" is not standard padded base64")]
    BadBase64,
    /// A map was expected (options, filters, metadata).
    #[error("expected a map value")]
    NotAMap,
    /// Bytes or text that are not a value at all.
    #[error("malformed value: {0}")]
    Malformed(Box<str>),
}

impl Value {
    /// The binary tag of this value's type.
    #[must_use]
    pub fn tag(&self) -> u8 {
        match self {
            Self::Null => 0,
            Self::Bool(_) => 1,
            Self::Int(_) => 2,
            Self::Float(_) => 3,
            Self::String(_) => 4,
            Self::Bytes(_) => 5,
            Self::List(_) => 6,
            Self::Map(_) => 7,
        }
    }

    /// Checks every bound of the [module docs](self): depth, string
    /// lengths, finite floats, the reserved key, and the size of both
    /// encodings (a value sent to JSON and binary clients alike must fit
    /// in both).
    ///
    /// # Errors
    /// The first [`ValueError`] found.
    pub fn check(&self) -> Result<(), ValueError> {
        self.check_tree(0)?;
        if self.bin_len() > MAX_SIZE || self.json_len() > MAX_SIZE {
            return Err(ValueError::TooLarge { max: MAX_SIZE });
        }
        Ok(())
    }

    /// Depth, strings, floats and keys; recursion stops past [`MAX_DEPTH`].
    fn check_tree(&self, level: usize) -> Result<(), ValueError> {
        match self {
            Self::Float(f) if !f.is_finite() => Err(ValueError::NonFinite),
            Self::String(s) => check_string(s),
            Self::List(items) => {
                check_level(level + 1)?;
                items.iter().try_for_each(|v| v.check_tree(level + 1))
            }
            Self::Map(map) => {
                check_level(level + 1)?;
                for (key, v) in map {
                    check_key(key)?;
                    v.check_tree(level + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The length of this value's binary encoding.
    #[must_use]
    pub fn bin_len(&self) -> usize {
        1 + match self {
            Self::Null => 0,
            Self::Bool(_) => 1,
            Self::Int(i) => varint_len(zigzag64(*i)),
            Self::Float(_) => 8,
            Self::String(s) => varint_len(s.len() as u64) + s.len(),
            Self::Bytes(b) => varint_len(b.len() as u64) + b.len(),
            Self::List(items) => varint_len(items.len() as u64) + items.iter().map(Self::bin_len).sum::<usize>(),
            Self::Map(map) => {
                varint_len(map.len() as u64)
                    + map.iter().map(|(k, v)| varint_len(k.len() as u64) + k.len() + v.bin_len()).sum::<usize>()
            }
        }
    }

    /// The length of this value's compact JSON text, as the encoder writes it.
    #[must_use]
    pub fn json_len(&self) -> usize {
        let mut counter = Counter(0);
        // Writing to a counter cannot fail, nor can serializing a value.
        let _ = serde_json::to_writer(&mut counter, self);
        counter.0
    }

    /// Appends the compact JSON text of this value to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("a value always serializes to a Vec");
    }

    /// Appends the binary encoding of this value to `out`.
    pub fn write_bin(&self, out: &mut Vec<u8>) {
        bincode::encode_into_std_write(self, out, bincode::config::standard()).expect("writing to a Vec cannot fail");
    }

    /// Reads a value from its JSON text, enforcing every bound.
    ///
    /// # Errors
    /// [`ValueError::Malformed`] for text that is not JSON, otherwise the
    /// bound that was passed.
    pub fn from_json(text: &[u8]) -> Result<Self, ValueError> {
        let failure = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_slice(text);
        let read = JsonSeed { level: 0, failure: &failure }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        match read {
            Ok(value) if value.json_len() > MAX_SIZE => Err(ValueError::TooLarge { max: MAX_SIZE }),
            Ok(value) => Ok(value),
            Err(e) => Err(failure.into_inner().unwrap_or_else(|| ValueError::Malformed(e.to_string().into()))),
        }
    }

    /// Converts parsed JSON into a value, enforcing every bound (the size
    /// measured as the compact JSON text of the result).
    ///
    /// # Errors
    /// The bound that was passed.
    pub fn from_json_value(json: serde_json::Value) -> Result<Self, ValueError> {
        let value = convert_json(json, 0)?;
        if value.json_len() > MAX_SIZE {
            return Err(ValueError::TooLarge { max: MAX_SIZE });
        }
        Ok(value)
    }

    /// Reads a value from exactly `bytes`, its binary encoding, enforcing
    /// every bound.
    ///
    /// # Errors
    /// [`ValueError::Malformed`] for truncated or trailing bytes and bad
    /// tags, otherwise the bound that was passed.
    pub fn from_bin(bytes: &[u8]) -> Result<Self, ValueError> {
        let mut decoder = DecoderImpl::new(SliceReader::new(bytes), bincode::config::standard(), ());
        let mut budget = MAX_SIZE;
        let value = decode_value(&mut decoder, 0, &mut budget).map_err(Failure::into_value_error)?;
        if decoder.reader().peek_read(1).is_some() {
            return Err(ValueError::Malformed("bytes left over after the value".into()));
        }
        Ok(value)
    }

    /// The bool, if this is one.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is a float or an integer.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(f) => Some(*f),
            Self::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is bytes.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, if this is a list.
    #[must_use]
    pub fn as_list(&self) -> Option<&[Self]> {
        match self {
            Self::List(items) => Some(items),
            _ => None,
        }
    }

    /// The map, if this is one.
    #[must_use]
    pub fn as_map(&self) -> Option<&BTreeMap<String, Self>> {
        match self {
            Self::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The value at `key`, if this is a map holding it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Self> {
        self.as_map().and_then(|m| m.get(key))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<Vec<Self>> for Value {
    fn from(items: Vec<Self>) -> Self {
        Self::List(items)
    }
}

impl From<BTreeMap<String, Self>> for Value {
    fn from(map: BTreeMap<String, Self>) -> Self {
        Self::Map(map)
    }
}

impl From<ValueMap> for Value {
    fn from(map: ValueMap) -> Self {
        Self::Map(map.0)
    }
}

fn check_level(level: usize) -> Result<(), ValueError> {
    if level > MAX_DEPTH {
        Err(ValueError::TooDeep { max: MAX_DEPTH })
    } else {
        Ok(())
    }
}

fn check_string(s: &str) -> Result<(), ValueError> {
    if s.len() > MAX_STRING {
        Err(ValueError::StringTooLong { len: s.len(), max: MAX_STRING })
    } else {
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), ValueError> {
    if key == BYTES_KEY {
        return Err(ValueError::ReservedKey);
    }
    check_string(key)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The length of bincode's varint of `v`: 1 below 251, else a marker byte
/// and the smallest of u16, u32, u64.
pub(crate) fn varint_len(v: u64) -> usize {
    match v {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// An `io::Write` that only counts.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Parsed JSON into a value, `level` lists and maps deep.
fn convert_json(json: serde_json::Value, level: usize) -> Result<Value, ValueError> {
    use serde_json::Value as J;
    Ok(match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            // An integer literal past i64 reads as the nearest float (as a
            // JavaScript sender means it: JSON.stringify(1e20) has no dot).
            (None, Some(u)) => Value::Float(u as f64),
            (None, None) => Value::Float(n.as_f64().ok_or(ValueError::NonFinite)?),
        },
        J::String(s) => {
            check_string(&s)?;
            Value::String(s)
        }
        J::Array(items) => {
            check_level(level + 1)?;
            Value::List(items.into_iter().map(|v| convert_json(v, level + 1)).collect::<Result<_, _>>()?)
        }
        J::Object(map) => {
            if map.contains_key(BYTES_KEY) {
                if map.len() != 1 {
                    return Err(ValueError::ReservedKey);
                }
                let Some((_, J::String(text))) = map.into_iter().next() else {
                    return Err(ValueError::ReservedKey);
                };
                // Longer base64 than the whole value may take: no decoding.
                if text.len() > MAX_SIZE {
                    return Err(ValueError::TooLarge { max: MAX_SIZE });
                }
                return BASE64.decode(text.as_bytes()).map(Value::Bytes).map_err(|_| ValueError::BadBase64);
            }
            check_level(level + 1)?;
            let mut out = BTreeMap::new();
            for (key, v) in map {
                check_string(&key)?;
                out.insert(key, convert_json(v, level + 1)?);
            }
            Value::Map(out)
        }
    })
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::Float(f) => serializer.serialize_f64(*f),
            Self::String(s) => serializer.serialize_str(s),
            Self::Bytes(b) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(BYTES_KEY, &BASE64.encode(b))?;
                map.end()
            }
            Self::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Self::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let failure = RefCell::new(None);
        let value = JsonSeed { level: 0, failure: &failure }.deserialize(deserializer)?;
        if value.json_len() > MAX_SIZE {
            return Err(de::Error::custom(ValueError::TooLarge { max: MAX_SIZE }));
        }
        Ok(value)
    }
}

/// Reads a value at nesting `level` straight from a self-describing
/// deserializer (JSON), bound by bound as it goes; the first bound passed
/// is kept in `failure` (the deserializer's error only carries its text).
///
/// Not through `serde_json::Value`: with serde_json's `raw_value` feature
/// on (the workspace uses it), its map reader gives an object whose first
/// key is serde_json's private raw-value token a meaning of its own, so
/// `{"$serde_json::private::RawValue":0}` was refused while the same map
/// with another key before it was taken (and written back in key order,
/// unreadable), and a string under that key was parsed as JSON.
struct JsonSeed<'a> {
    level: usize,
    failure: &'a RefCell<Option<ValueError>>,
}

impl JsonSeed<'_> {
    /// `bound` as the deserializer's error, kept (the first one) in `failure`.
    fn fail<E: de::Error>(&self, bound: ValueError) -> E {
        let text = bound.to_string();
        self.failure.borrow_mut().get_or_insert(bound);
        E::custom(text)
    }

    fn check<E: de::Error>(&self, checked: Result<(), ValueError>) -> Result<(), E> {
        checked.map_err(|bound| self.fail(bound))
    }

    fn child(&self) -> JsonSeed<'_> {
        JsonSeed { level: self.level + 1, failure: self.failure }
    }
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        // An integer literal past i64 reads as the nearest float (as a
        // JavaScript sender means it: JSON.stringify(1e20) has no dot).
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        if f.is_finite() {
            Ok(Value::Float(f))
        } else {
            Err(self.fail(ValueError::NonFinite))
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.check(check_string(s))?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.check(check_string(&s))?;
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.check(check_level(self.level + 1))?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == BYTES_KEY {
                // `{"$bytes":"<base64>"}` alone is bytes (a leaf, no level).
                let text = map.next_value::<BytesText>()?.0;
                let alone = out.is_empty() && map.next_key::<IgnoredAny>()?.is_none();
                let Some(text) = text.filter(|_| alone) else { return Err(self.fail(ValueError::ReservedKey)) };
                // Longer base64 than the whole value may take: no decoding.
                if text.len() > MAX_SIZE {
                    return Err(self.fail(ValueError::TooLarge { max: MAX_SIZE }));
                }
                return BASE64.decode(text.as_bytes()).map(Value::Bytes).map_err(|_| self.fail(ValueError::BadBase64));
            }
            if out.is_empty() {
                self.check(check_level(self.level + 1))?;
            }
            self.check(check_string(&key))?;
            let value = map.next_value_seed(self.child())?;
            out.insert(key, value);
        }
        if out.is_empty() {
            self.check(check_level(self.level + 1))?;
        }
        Ok(Value::Map(out))
    }
}

/// The value under `"$bytes"`: its text when it is a string, else `None`
/// (whatever it is, read and dropped).
struct BytesText(Option<String>);

impl<'de> Deserialize<'de> for BytesText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = BytesText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("base64 text")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BytesText, E> {
                Ok(BytesText(Some(s.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<BytesText, E> {
                Ok(BytesText(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<BytesText, E> {
                Ok(BytesText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<BytesText, E> {
                Ok(BytesText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<BytesText, E> {
                Ok(BytesText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<BytesText, E> {
                Ok(BytesText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BytesText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BytesText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BytesText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BytesText(None))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

impl Encode for Value {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), BinEncodeError> {
        u32::from(self.tag()).encode(encoder)?;
        match self {
            Self::Null => Ok(()),
            Self::Bool(b) => b.encode(encoder),
            Self::Int(i) => i.encode(encoder),
            Self::Float(f) => f.encode(encoder),
            Self::String(s) => s.encode(encoder),
            Self::Bytes(b) => b.encode(encoder),
            Self::List(items) => items.encode(encoder),
            Self::Map(map) => map.encode(encoder),
        }
    }
}

/// A binary decoding failure: a bound, or bincode's own error.
enum Failure {
    Value(ValueError),
    Bin(BinDecodeError),
}

impl From<ValueError> for Failure {
    fn from(e: ValueError) -> Self {
        Self::Value(e)
    }
}

impl From<BinDecodeError> for Failure {
    fn from(e: BinDecodeError) -> Self {
        Self::Bin(e)
    }
}

impl Failure {
    fn into_value_error(self) -> ValueError {
        match self {
            Self::Value(e) => e,
            Self::Bin(BinDecodeError::UnexpectedEnd { .. }) => ValueError::Malformed("truncated".into()),
            Self::Bin(e) => ValueError::Malformed(format!("{e:?}").into()),
        }
    }

    fn into_bin_error(self) -> BinDecodeError {
        match self {
            Self::Value(e) => BinDecodeError::OtherString(e.to_string()),
            Self::Bin(e) => e,
        }
    }
}

/// Takes `n` bytes from the size budget: past it, the value is too large.
fn spend(budget: &mut usize, n: usize) -> Result<(), ValueError> {
    *budget = budget.checked_sub(n).ok_or(ValueError::TooLarge { max: MAX_SIZE })?;
    Ok(())
}

/// Reads a length, spends its encoding, and checks that `len` more bytes
/// (`min_each` per item) fit in the budget before anything is allocated.
fn decode_len<D: Decoder>(decoder: &mut D, budget: &mut usize, min_each: usize) -> Result<usize, Failure> {
    let len = u64::decode(decoder)?;
    spend(budget, varint_len(len))?;
    match usize::try_from(len) {
        Ok(len) if len.saturating_mul(min_each) <= *budget => Ok(len),
        _ => Err(ValueError::TooLarge { max: MAX_SIZE }.into()),
    }
}

fn decode_bytes<D: Decoder>(decoder: &mut D, budget: &mut usize, max: usize) -> Result<Vec<u8>, Failure> {
    let len = decode_len(decoder, budget, 1)?;
    if len > max {
        return Err(ValueError::StringTooLong { len, max }.into());
    }
    spend(budget, len)?;
    decoder.claim_bytes_read(len)?;
    let mut bytes = vec![0; len];
    decoder.reader().read(&mut bytes)?;
    Ok(bytes)
}

fn decode_string<D: Decoder>(decoder: &mut D, budget: &mut usize) -> Result<String, Failure> {
    let bytes = decode_bytes(decoder, budget, MAX_STRING)?;
    String::from_utf8(bytes).map_err(|_| ValueError::Malformed("string is not UTF-8".into()).into())
}

/// Decodes one value `level` lists and maps deep, spending its canonical
/// encoded size from `budget`.
fn decode_value<D: Decoder>(decoder: &mut D, level: usize, budget: &mut usize) -> Result<Value, Failure> {
    let tag = u32::decode(decoder)?;
    spend(budget, varint_len(u64::from(tag)))?;
    Ok(match tag {
        0 => Value::Null,
        1 => {
            spend(budget, 1)?;
            Value::Bool(bool::decode(decoder)?)
        }
        2 => {
            let i = i64::decode(decoder)?;
            spend(budget, varint_len(zigzag64(i)))?;
            Value::Int(i)
        }
        3 => {
            spend(budget, 8)?;
            let f = f64::decode(decoder)?;
            if !f.is_finite() {
                return Err(ValueError::NonFinite.into());
            }
            Value::Float(f)
        }
        4 => Value::String(decode_string(decoder, budget)?),
        5 => Value::Bytes(decode_bytes(decoder, budget, MAX_SIZE)?),
        6 => {
            check_level(level + 1)?;
            let n = decode_len(decoder, budget, 1)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(decode_value(decoder, level + 1, budget)?);
            }
            Value::List(items)
        }
        7 => {
            check_level(level + 1)?;
            // Each entry takes at least a key length and a tag.
            let n = decode_len(decoder, budget, 2)?;
            let mut map = BTreeMap::new();
            for _ in 0..n {
                let key = decode_string(decoder, budget)?;
                if key == BYTES_KEY {
                    return Err(ValueError::ReservedKey.into());
                }
                // A key given twice: the last one counts, as in JSON.
                map.insert(key, decode_value(decoder, level + 1, budget)?);
            }
            Value::Map(map)
        }
        other => return Err(ValueError::Malformed(format!("unknown value tag {other}").into()).into()),
    })
}

impl<Context> Decode<Context> for Value {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, BinDecodeError> {
        let mut budget = MAX_SIZE;
        decode_value(decoder, 0, &mut budget).map_err(Failure::into_bin_error)
    }
}

bincode::impl_borrow_decode!(Value);

/// A map value: game options, list filters and room metadata, where the
/// contract asks for a map. On the wire it is exactly a [`Value::Map`]
/// (binary tag `07` included); any other value there is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueMap(pub BTreeMap<String, Value>);

impl ValueMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the map as a value ([`Value::check`]).
    ///
    /// # Errors
    /// The first [`ValueError`] found.
    pub fn check(&self) -> Result<(), ValueError> {
        // A map of one level: check each entry and measure the whole.
        Value::Map(self.0.clone()).check()
    }

    /// Whether a room with this metadata passes `filter`: every key of the
    /// filter is in the metadata with an equal value (a key the metadata
    /// lacks never matches; an empty filter passes every room).
    #[must_use]
    pub fn matches(&self, filter: &Self) -> bool {
        filter.0.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }

    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Map(map) => Ok(Self(map)),
            _ => Err(ValueError::NotAMap),
        }
    }
}

impl Deref for ValueMap {
    type Target = BTreeMap<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ValueMap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<BTreeMap<String, Value>> for ValueMap {
    fn from(map: BTreeMap<String, Value>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for ValueMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl Serialize for ValueMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ValueMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl Encode for ValueMap {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), BinEncodeError> {
        7u32.encode(encoder)?;
        self.0.encode(encoder)
    }
}

impl<Context> Decode<Context> for ValueMap {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, BinDecodeError> {
        let value = Value::decode(decoder)?;
        Self::from_value(value).map_err(|e| BinDecodeError::OtherString(e.to_string()))
    }
}

bincode::impl_borrow_decode!(ValueMap);

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Value {
        let mut v = Value::Null;
        for _ in 0..levels {
            v = Value::List(vec![v]);
        }
        v
    }

    #[test]
    fn depth_counts_lists_and_maps_from_one() {
        assert_eq!(nested(MAX_DEPTH).check(), Ok(()));
        assert_eq!(nested(MAX_DEPTH + 1).check(), Err(ValueError::TooDeep { max: MAX_DEPTH }));
        let mut bin = Vec::new();
        nested(MAX_DEPTH + 1).write_bin(&mut bin);
        assert_eq!(Value::from_bin(&bin), Err(ValueError::TooDeep { max: MAX_DEPTH }));
        let text = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(Value::from_json(text.as_bytes()), Err(ValueError::TooDeep { max: MAX_DEPTH }));
        // Bytes in JSON are an object but no level.
        let text = "[".repeat(MAX_DEPTH) + r#"{"$bytes":"AA=="}"# + &"]".repeat(MAX_DEPTH);
        assert!(Value::from_json(text.as_bytes()).is_ok());
    }

    #[test]
    fn sizes_are_those_of_the_encodings() {
        let v = Value::Map([("a".to_owned(), Value::List(vec![Value::Int(300), Value::Bytes(vec![1, 2, 3])]))].into());
        let mut bin = Vec::new();
        v.write_bin(&mut bin);
        assert_eq!(v.bin_len(), bin.len());
        let mut json = Vec::new();
        v.write_json(&mut json);
        assert_eq!(v.json_len(), json.len());
        assert_eq!(json, br#"{"a":[300,{"$bytes":"AQID"}]}"#);
    }

    #[test]
    fn bounds_are_enforced_at_their_edges() {
        let s = |n| Value::String("x".repeat(n));
        assert_eq!(s(MAX_STRING).check(), Ok(()));
        assert_eq!(s(MAX_STRING + 1).check(), Err(ValueError::StringTooLong { len: 1025, max: 1024 }));
        // 4096 bytes of binary: tag + 0xfb u16 length + 4092 bytes.
        let at = Value::Bytes(vec![0; MAX_SIZE - 4]);
        assert_eq!(at.bin_len(), MAX_SIZE);
        let mut bin = Vec::new();
        at.write_bin(&mut bin);
        assert_eq!(Value::from_bin(&bin), Ok(at));
        let over = Value::Bytes(vec![0; MAX_SIZE - 3]);
        bin.clear();
        over.write_bin(&mut bin);
        assert_eq!(Value::from_bin(&bin), Err(ValueError::TooLarge { max: MAX_SIZE }));
        assert_eq!(Value::Float(f64::NAN).check(), Err(ValueError::NonFinite));
        let reserved = Value::Map([(BYTES_KEY.to_owned(), Value::Null)].into());
        assert_eq!(reserved.check(), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":"AA==","b":1}"#), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":5}"#), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":"A"}"#), Err(ValueError::BadBase64));
    }

    #[test]
    fn a_forged_length_allocates_nothing() {
        // A list claiming u64::MAX items, a string claiming 2^32 bytes.
        let list = [6, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Value::from_bin(&list), Err(ValueError::TooLarge { max: MAX_SIZE }));
        let string = [4, 0xfc, 0, 0, 0, 1];
        assert!(matches!(Value::from_bin(&string), Err(ValueError::TooLarge { .. })));
    }

    #[test]
    fn serde_jsons_raw_value_token_is_an_ordinary_key() {
        // Found by the decode_value fuzz target: through serde_json::Value
        // (raw_value on), this key first in an object meant "raw JSON".
        const TOKEN: &str = "$serde_json::private::RawValue";
        let map = |v: Value| Value::Map([(TOKEN.to_owned(), v)].into());
        assert_eq!(Value::from_json(br#"{"$serde_json::private::RawValue":0}"#), Ok(map(Value::Int(0))));
        // A string under it stays a string (it was parsed as JSON).
        let text = br#"{"$serde_json::private::RawValue":"[1,2]"}"#;
        assert_eq!(Value::from_json(text), Ok(map(Value::from("[1,2]"))));
        assert_eq!(serde_json::from_slice::<Value>(text).unwrap(), map(Value::from("[1,2]")));
        // The fuzzer's input: taken, written back in key order, read back.
        let found = Value::from_json(br#"{"r\ff":"","$serde_json::private::RawValue":0}"#).unwrap();
        let mut json = Vec::new();
        found.write_json(&mut json);
        assert!(json.starts_with(br#"{"$serde_json"#), "{}", String::from_utf8_lossy(&json));
        assert_eq!(Value::from_json(&json), Ok(found));
    }

    #[test]
    fn json_bounds_are_kept_typed_through_the_reader() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            Value::from_json(format!(r#"{{"a":{deep}}}"#).as_bytes()),
            Err(ValueError::TooDeep { max: MAX_DEPTH })
        );
        let long = "x".repeat(MAX_STRING + 1);
        assert_eq!(
            Value::from_json(format!(r#"{{"{long}":1}}"#).as_bytes()),
            Err(ValueError::StringTooLong { len: MAX_STRING + 1, max: MAX_STRING })
        );
        assert_eq!(Value::from_json(br#"{"a":1,"$bytes":"AA=="}"#), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":"AA==","$bytes":"AA=="}"#), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":[1,{"a":2}]}"#), Err(ValueError::ReservedKey));
        assert_eq!(Value::from_json(br#"{"$bytes":"AQID"}"#), Ok(Value::Bytes(vec![1, 2, 3])));
        assert!(matches!(Value::from_json(br#"{"a":1} x"#), Err(ValueError::Malformed(_))));
        assert!(matches!(Value::from_json(br#"{"a":1e400}"#), Err(ValueError::Malformed(_))));
        assert!(matches!(Value::from_json(b"[1,"), Err(ValueError::Malformed(_))));
        let empty_deep = "[".repeat(MAX_DEPTH) + "{}" + &"]".repeat(MAX_DEPTH);
        assert_eq!(Value::from_json(empty_deep.as_bytes()), Err(ValueError::TooDeep { max: MAX_DEPTH }));
        let big = format!("[{}]", vec!["\"x\""; MAX_SIZE / 4 + 1].join(","));
        assert_eq!(Value::from_json(big.as_bytes()), Err(ValueError::TooLarge { max: MAX_SIZE }));
    }

    #[test]
    fn json_numbers_keep_their_kind() {
        assert_eq!(Value::from_json(b"1"), Ok(Value::Int(1)));
        assert_eq!(Value::from_json(b"1.0"), Ok(Value::Float(1.0)));
        assert_eq!(Value::from_json(b"-9223372036854775808"), Ok(Value::Int(i64::MIN)));
        assert_eq!(Value::from_json(b"18446744073709551615"), Ok(Value::Float(u64::MAX as f64)));
        assert_ne!(Value::Int(1), Value::Float(1.0));
    }

    #[test]
    fn filters_match_on_every_key() {
        let meta: ValueMap = [("mode", Value::from("ctf")), ("round", Value::Int(2))].into_iter().collect();
        assert!(meta.matches(&ValueMap::new()));
        assert!(meta.matches(&[("mode", "ctf")].into_iter().collect()));
        assert!(!meta.matches(&[("mode", "duel")].into_iter().collect()));
        assert!(!meta.matches(&[("map", "dust")].into_iter().collect()));
    }
}
