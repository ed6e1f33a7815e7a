//! Input schemas and input data: the fields a game's input carries, and
//! `input.data` in both wire forms.
//!
//! A game declares an [`InputSchema`] (its input fields in order, each a
//! name and a [`FieldType`], as entity fields are described); `joined` and
//! `watching` carry it. The codec reads `input.data` without the schema
//! into a [`RawInput`]: in `tickforge.v1.bin` the bytes of the fields,
//! held inline ([`BinInput`], no heap); in `tickforge.v1.json` the object's
//! members ([`JsonInput`]). The receiver, which knows the schema, turns it
//! into [`InputValues`] with [`InputSchema::decode`]: a small `Copy` value,
//! one quantized `i32` per field, which a binary input reaches without
//! allocating. A field missing, out of range or of the wrong type is an
//! [`InputError`], which the server answers with an `error` indication
//! (`bad_request`) and which does not count as an undecodable message.
//!
//! Binary layout: the fields in schema order, each as bincode 2 writes its
//! type, with nothing between or after them, running to the end of the
//! message: `u8` and `i8` one raw byte (two's complement); `u16` a varint;
//! `i16` zigzag then a varint; `i32` and `fixed` (the quantized value)
//! zigzag then a varint. Arena's input (`move_x` i8, `move_y` i8,
//! `buttons` u8) is therefore three raw bytes.
//!
//! JSON: an object with one member per field, by name: an integer for the
//! integer types, a number for `fixed` (quantized on receipt with
//! `round(value × scale)`). A member the schema lacks is refused.

use crate::codec::Format;
use crate::schema::{FieldType, SchemaError};
use bincode::{Decode, Encode};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::LazyLock;
use thiserror::Error;

/// The most fields an input schema may have.
pub const MAX_INPUT_FIELDS: usize = 16;
/// The most bytes binary input data may take: every field at its widest
/// (an `i32` or `fixed` takes at most 5).
pub const MAX_INPUT_BYTES: usize = 5 * MAX_INPUT_FIELDS;

/// One input field: a name and a type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct InputField {
    /// The field's name in JSON (`move_x`, ...).
    pub name: String,
    /// Its type (and for `fixed`, its quantization).
    #[serde(rename = "type")]
    pub ty: FieldType,
}

/// A game's input fields, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct InputSchema {
    /// The fields, in wire order.
    pub fields: Vec<InputField>,
}

/// Why input data was refused (or could not be written).
///
/// The server answers a refused input with an `error` indication
/// ([`InputError::reject_code`]) and drops it; the connection stays open.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputError {
    /// A field of the schema is not in the data (binary: the bytes end
    /// before it).
    #[error("input field {field:?} is missing")]
    Missing {
        /// The field.
        field: Box<str>,
    },
    /// A value outside its field's type.
    #[error("input field {field:?} is out of range for its type")]
    OutOfRange {
        /// The field.
        field: Box<str>,
    },
    /// A JSON value that is not a number, or not an integer for an integer
    /// field.
    #[error("input field {field:?} is not a number of its type")]
    WrongType {
        /// The field.
        field: Box<str>,
    },
    /// A JSON member the schema does not have.
    #[error("input field {name:?} is not in the game's input schema")]
    UnknownField {
        /// The member's name.
        name: Box<str>,
    },
    /// A binary varint with an unknown marker byte (254 or 255).
    #[error("input field {field:?} has a malformed varint")]
    BadVarint {
        /// The field.
        field: Box<str>,
    },
    /// Binary bytes after the last field.
    #[error("{count} bytes after the input's last field")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Values that do not match the schema's field count (when encoding).
    #[error("{got} input values for an input schema of {expected} fields")]
    WrongCount {
        /// The schema's field count.
        expected: usize,
        /// The values given.
        got: usize,
    },
    /// A schema over [`MAX_INPUT_FIELDS`] fields.
    #[error("input schema has {count} fields, at most {MAX_INPUT_FIELDS} are supported")]
    SchemaTooLarge {
        /// Its field count.
        count: usize,
    },
    /// No input schema is known (a session in no room).
    #[error("no input schema: not in a room")]
    NoSchema,
}

impl InputError {
    /// The code of the `error` indication that answers this input.
    #[must_use]
    pub fn reject_code(&self) -> crate::message::RejectCode {
        crate::message::RejectCode::BadRequest
    }
}

/// One input's values, quantized, in schema order: what a game reads.
///
/// Fixed capacity ([`MAX_INPUT_FIELDS`]) and `Copy`, so a room keeps one
/// per player without allocating. Positions past [`InputValues::len`] are
/// always 0, and [`InputValues::get`] reads them as 0: the neutral input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InputValues {
    len: u8,
    values: [i32; MAX_INPUT_FIELDS],
}

impl InputValues {
    /// Values from a slice, in schema order; `None` past [`MAX_INPUT_FIELDS`].
    #[must_use]
    pub fn from_slice(values: &[i32]) -> Option<Self> {
        if values.len() > MAX_INPUT_FIELDS {
            return None;
        }
        let mut out = Self { len: values.len() as u8, values: [0; MAX_INPUT_FIELDS] };
        out.values[..values.len()].copy_from_slice(values);
        Some(out)
    }

    /// How many values it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values, in schema order.
    #[must_use]
    pub fn as_slice(&self) -> &[i32] {
        &self.values[..self.len()]
    }

    /// The value of field `index`; 0 (neutral) past the values held.
    #[must_use]
    pub fn get(&self, index: usize) -> i32 {
        self.as_slice().get(index).copied().unwrap_or(0)
    }

    /// The value of field `index`, to change it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut i32> {
        let len = self.len();
        self.values[..len].get_mut(index)
    }

    /// The value of the field called `name` in `schema`.
    #[must_use]
    pub fn named(&self, schema: &InputSchema, name: &str) -> Option<i32> {
        schema.index_of(name).map(|i| self.get(i))
    }

    /// Sets the field called `name` in `schema` (quantized; the range is
    /// checked when the input is encoded).
    ///
    /// # Errors
    /// [`InputError::UnknownField`] for a name the schema lacks or a field
    /// these values do not hold.
    pub fn set_named(&mut self, schema: &InputSchema, name: &str, value: i32) -> Result<(), InputError> {
        let slot = schema.index_of(name).and_then(|i| self.get_mut(i));
        let slot = slot.ok_or_else(|| InputError::UnknownField { name: name.into() })?;
        *slot = value;
        Ok(())
    }
}

/// Binary input data as received: the fields' bytes, held inline.
#[derive(Clone, Copy)]
pub struct BinInput {
    len: u8,
    bytes: [u8; MAX_INPUT_BYTES],
}

impl BinInput {
    /// The data of `bytes`; `None` past [`MAX_INPUT_BYTES`].
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_INPUT_BYTES {
            return None;
        }
        let mut out = Self { len: bytes.len() as u8, bytes: [0; MAX_INPUT_BYTES] };
        out.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(out)
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for BinInput {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for BinInput {}

impl fmt::Debug for BinInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BinInput").field(&self.as_bytes()).finish()
    }
}

/// JSON input data as received: the object's members, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonInput {
    members: Vec<(String, serde_json::Value)>,
}

impl JsonInput {
    /// Data of these members; `None` past [`MAX_INPUT_FIELDS`] members or
    /// with a name given twice.
    #[must_use]
    pub fn new(members: Vec<(String, serde_json::Value)>) -> Option<Self> {
        let ok = members.len() <= MAX_INPUT_FIELDS
            && members.iter().enumerate().all(|(i, (n, _))| !members[..i].iter().any(|(m, _)| m == n));
        ok.then_some(Self { members })
    }

    /// The members, in the order received.
    #[must_use]
    pub fn members(&self) -> &[(String, serde_json::Value)] {
        &self.members
    }

    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl Serialize for JsonInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (k, v) in &self.members {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for JsonInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonInput;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an input object of at most {MAX_INPUT_FIELDS} fields")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonInput, A::Error> {
                use serde::de::Error;
                let mut members: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if members.len() == MAX_INPUT_FIELDS {
                        return Err(A::Error::custom(format!("input data has more than {MAX_INPUT_FIELDS} fields")));
                    }
                    if members.iter().any(|(n, _)| *n == name) {
                        return Err(A::Error::custom(format!("input field {name:?} is given twice")));
                    }
                    members.push((name, value));
                }
                Ok(JsonInput { members })
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// `input.data` as the codec reads it, before the schema is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawInput {
    /// From (or for) `tickforge.v1.bin`.
    Bin(BinInput),
    /// From (or for) `tickforge.v1.json`.
    Json(JsonInput),
}

impl RawInput {
    /// The wire form this data is held in.
    #[must_use]
    pub fn format(&self) -> Format {
        match self {
            Self::Bin(_) => Format::Bin,
            Self::Json(_) => Format::Json,
        }
    }
}

impl Serialize for RawInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(j) => j.serialize(serializer),
            Self::Bin(_) => Err(serde::ser::Error::custom("binary input data cannot be written as JSON")),
        }
    }
}

impl<'de> Deserialize<'de> for RawInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JsonInput::deserialize(deserializer).map(Self::Json)
    }
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Appends bincode's varint of `v`.
fn put_varint(out: &mut Vec<u8>, v: u32) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xffff => {
            out.push(251);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        _ => {
            out.push(252);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Why one binary field could not be read.
enum FieldFault {
    Missing,
    BadVarint,
    OutOfRange,
}

/// Reads bincode's varint at `*pos` (a wider form than needed is accepted).
fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, FieldFault> {
    let mut take = |n: usize| -> Result<u64, FieldFault> {
        let b = bytes.get(*pos..*pos + n).ok_or(FieldFault::Missing)?;
        *pos += n;
        let mut le = [0u8; 8];
        le[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(le))
    };
    match take(1)? {
        b @ 0..=250 => Ok(b),
        251 => take(2),
        252 => take(4),
        253 => take(8),
        _ => Err(FieldFault::BadVarint),
    }
}

fn read_field(bytes: &[u8], pos: &mut usize, ty: FieldType) -> Result<i32, FieldFault> {
    let v = match ty {
        FieldType::U8 | FieldType::I8 => {
            let b = *bytes.get(*pos).ok_or(FieldFault::Missing)?;
            *pos += 1;
            return Ok(if ty == FieldType::U8 { i32::from(b) } else { i32::from(b as i8) });
        }
        _ => read_varint(bytes, pos)?,
    };
    match ty {
        FieldType::U16 => u16::try_from(v).map(i32::from).map_err(|_| FieldFault::OutOfRange),
        // Zigzag of an i16 is a u16; of an i32, a u32.
        FieldType::I16 => u16::try_from(v).map(|z| unzigzag32(u32::from(z))).map_err(|_| FieldFault::OutOfRange),
        _ => u32::try_from(v).map(unzigzag32).map_err(|_| FieldFault::OutOfRange),
    }
}

fn write_field(out: &mut Vec<u8>, ty: FieldType, q: i32) {
    match ty {
        FieldType::U8 | FieldType::I8 => out.push(q as u8),
        FieldType::U16 => put_varint(out, q as u32),
        _ => put_varint(out, zigzag32(q)),
    }
}

/// A JSON member's value as a field of type `ty`.
fn json_field(name: &str, ty: FieldType, v: &serde_json::Value) -> Result<i32, InputError> {
    let out_of_range = || InputError::OutOfRange { field: name.into() };
    let wrong_type = || InputError::WrongType { field: name.into() };
    let q = match ty {
        FieldType::Fixed(scale) => {
            let q = (v.as_f64().ok_or_else(wrong_type)? * f64::from(scale.max(1))).round();
            if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&q) {
                return Err(out_of_range());
            }
            q as i32
        }
        _ => match (v.as_i64(), v.as_u64()) {
            (Some(i), _) => i32::try_from(i).map_err(|_| out_of_range())?,
            (None, Some(_)) => return Err(out_of_range()),
            (None, None) => return Err(wrong_type()),
        },
    };
    if ty.holds(q) {
        Ok(q)
    } else {
        Err(out_of_range())
    }
}

impl InputSchema {
    /// A schema of these fields.
    #[must_use]
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a str, FieldType)>) -> Self {
        Self { fields: fields.into_iter().map(|(name, ty)| InputField { name: name.to_owned(), ty }).collect() }
    }

    /// Checks the schema is usable: at most [`MAX_INPUT_FIELDS`] fields,
    /// names all different, no `fixed` of scale 0.
    ///
    /// # Errors
    /// The first [`SchemaError`] found.
    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.fields.len() > MAX_INPUT_FIELDS {
            return Err(SchemaError::TooManyInputFields { count: self.fields.len() });
        }
        for (i, field) in self.fields.iter().enumerate() {
            if self.fields[..i].iter().any(|f| f.name == field.name) {
                return Err(SchemaError::DuplicateName { name: field.name.clone() });
            }
            if field.ty == FieldType::Fixed(0) {
                return Err(SchemaError::ZeroScale { name: field.name.clone() });
            }
        }
        Ok(())
    }

    /// The index of the field called `name`.
    #[must_use]
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The neutral input: every field 0.
    #[must_use]
    pub fn neutral(&self) -> InputValues {
        let len = self.fields.len().min(MAX_INPUT_FIELDS);
        InputValues { len: len as u8, values: [0; MAX_INPUT_FIELDS] }
    }

    fn fits(&self) -> Result<(), InputError> {
        if self.fields.len() > MAX_INPUT_FIELDS {
            return Err(InputError::SchemaTooLarge { count: self.fields.len() });
        }
        Ok(())
    }

    /// Checks `values` against the schema: one per field, each in its type.
    ///
    /// # Errors
    /// [`InputError::WrongCount`], [`InputError::OutOfRange`].
    pub fn check(&self, values: &InputValues) -> Result<(), InputError> {
        self.fits()?;
        if values.len() != self.fields.len() {
            return Err(InputError::WrongCount { expected: self.fields.len(), got: values.len() });
        }
        for (field, &q) in self.fields.iter().zip(values.as_slice()) {
            if !field.ty.holds(q) {
                return Err(InputError::OutOfRange { field: field.name.as_str().into() });
            }
        }
        Ok(())
    }

    /// Reads input data of either form with this schema. A binary input
    /// is read without allocating (unless it is refused).
    ///
    /// # Errors
    /// An [`InputError`] naming the first field that is missing, out of
    /// range or of the wrong type; a JSON member the schema lacks; bytes
    /// after the last binary field.
    pub fn decode(&self, raw: &RawInput) -> Result<InputValues, InputError> {
        match raw {
            RawInput::Bin(b) => self.decode_bin(b.as_bytes()),
            RawInput::Json(j) => self.decode_json(j),
        }
    }

    /// Reads binary input data (the bytes after `input`'s `ack`).
    ///
    /// # Errors
    /// As [`InputSchema::decode`].
    pub fn decode_bin(&self, bytes: &[u8]) -> Result<InputValues, InputError> {
        self.fits()?;
        let mut out = self.neutral();
        let mut pos = 0;
        for (i, field) in self.fields.iter().enumerate() {
            out.values[i] = read_field(bytes, &mut pos, field.ty).map_err(|fault| {
                let field = field.name.as_str().into();
                match fault {
                    FieldFault::Missing => InputError::Missing { field },
                    FieldFault::BadVarint => InputError::BadVarint { field },
                    FieldFault::OutOfRange => InputError::OutOfRange { field },
                }
            })?;
        }
        if pos < bytes.len() {
            return Err(InputError::TrailingBytes { count: bytes.len() - pos });
        }
        Ok(out)
    }

    fn decode_json(&self, data: &JsonInput) -> Result<InputValues, InputError> {
        self.fits()?;
        if let Some((name, _)) = data.members.iter().find(|(n, _)| self.index_of(n).is_none()) {
            return Err(InputError::UnknownField { name: name.as_str().into() });
        }
        let mut out = self.neutral();
        for (i, field) in self.fields.iter().enumerate() {
            let v = data.get(&field.name).ok_or_else(|| InputError::Missing { field: field.name.as_str().into() })?;
            out.values[i] = json_field(&field.name, field.ty, v)?;
        }
        Ok(out)
    }

    /// Writes `values` as input data of `format` (for a client).
    ///
    /// # Errors
    /// [`InputError::WrongCount`] or [`InputError::OutOfRange`] for values
    /// that do not fit the schema.
    pub fn encode(&self, format: Format, values: &InputValues) -> Result<RawInput, InputError> {
        self.check(values)?;
        Ok(match format {
            Format::Bin => {
                let mut bytes = Vec::with_capacity(MAX_INPUT_BYTES);
                for (field, &q) in self.fields.iter().zip(values.as_slice()) {
                    write_field(&mut bytes, field.ty, q);
                }
                RawInput::Bin(BinInput::new(&bytes).expect("every field fits its widest form"))
            }
            Format::Json => {
                let members = self
                    .fields
                    .iter()
                    .zip(values.as_slice())
                    .map(|(field, &q)| {
                        let v = match field.ty {
                            FieldType::Fixed(_) => serde_json::Value::from(field.ty.dequantize(q)),
                            _ => serde_json::Value::from(q),
                        };
                        (field.name.clone(), v)
                    })
                    .collect();
                RawInput::Json(JsonInput { members })
            }
        })
    }
}

/// The stick input: a two-axis stick and eight buttons, arena's input
/// schema (`move_x` i8, `move_y` i8, `buttons` u8) as a plain struct, and
/// the input of every game that keeps the default input schema.
///
/// Arena reads `move_*` as a direction (-128 as -127) and bit 0 of
/// `buttons` ([`InputData::FIRE`]) as fire; bits 1 to 7 are ignored
/// (send 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode)]
pub struct InputData {
    /// Horizontal direction, -127..=127 (-128 is read as -127).
    pub move_x: i8,
    /// Vertical direction, -127..=127 (-128 is read as -127).
    pub move_y: i8,
    /// Button bits; bit 0 = fire in arena.
    pub buttons: u8,
}

static STICK: LazyLock<InputSchema> = LazyLock::new(|| {
    InputSchema::new([("move_x", FieldType::I8), ("move_y", FieldType::I8), ("buttons", FieldType::U8)])
});

impl InputData {
    /// The `buttons` bit arena fires on (bit 0).
    pub const FIRE: u8 = 1;

    /// The stick's input schema: `move_x` i8, `move_y` i8, `buttons` u8.
    #[must_use]
    pub fn schema() -> &'static InputSchema {
        &STICK
    }

    /// This input as data of `format` (cannot fail: every field is in range
    /// by its Rust type).
    #[must_use]
    pub fn to_raw(self, format: Format) -> RawInput {
        match format {
            Format::Bin => {
                RawInput::Bin(BinInput::new(&[self.move_x as u8, self.move_y as u8, self.buttons]).expect("3 bytes"))
            }
            Format::Json => RawInput::Json(JsonInput {
                members: vec![
                    ("move_x".to_owned(), self.move_x.into()),
                    ("move_y".to_owned(), self.move_y.into()),
                    ("buttons".to_owned(), self.buttons.into()),
                ],
            }),
        }
    }
}

impl From<InputData> for InputValues {
    fn from(d: InputData) -> Self {
        Self::from_slice(&[i32::from(d.move_x), i32::from(d.move_y), i32::from(d.buttons)]).expect("3 values")
    }
}

impl From<InputValues> for InputData {
    /// Fields 0, 1 and 2 as the stick schema lays them out (clamped to
    /// their types; a missing one is 0).
    fn from(v: InputValues) -> Self {
        Self {
            move_x: v.get(0).clamp(-128, 127) as i8,
            move_y: v.get(1).clamp(-128, 127) as i8,
            buttons: v.get(2).clamp(0, 255) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide() -> InputSchema {
        InputSchema::new([
            ("steer", FieldType::I16),
            ("throttle", FieldType::U8),
            ("aim", FieldType::Fixed(100)),
            ("item", FieldType::U16),
            ("score", FieldType::I32),
        ])
    }

    #[test]
    fn every_type_round_trips_at_its_edges() {
        let schema = wide();
        for values in [[-32768, 0, i32::MIN, 0, i32::MIN], [32767, 255, i32::MAX, 65535, i32::MAX], [0; 5]] {
            let values = InputValues::from_slice(&values).unwrap();
            for format in Format::ALL {
                let raw = schema.encode(format, &values).unwrap();
                assert_eq!(schema.decode(&raw), Ok(values), "{format:?}");
            }
        }
        let widest = InputValues::from_slice(&[-32768, 255, i32::MIN, 65535, i32::MIN]).unwrap();
        let RawInput::Bin(b) = schema.encode(Format::Bin, &widest).unwrap() else { unreachable!() };
        assert_eq!(b.as_bytes().len(), 3 + 1 + 5 + 3 + 5);
    }

    #[test]
    fn bad_data_names_the_field() {
        let schema = wide();
        let field = |s: &str| -> Box<str> { s.into() };
        assert_eq!(schema.decode_bin(&[0, 7]), Err(InputError::Missing { field: field("aim") }));
        assert_eq!(schema.decode_bin(&[254]), Err(InputError::BadVarint { field: field("steer") }));
        // u16 sent in the u32 form with a value past u16.
        assert_eq!(
            schema.decode_bin(&[0, 7, 0, 252, 0, 0, 1, 0]),
            Err(InputError::OutOfRange { field: field("item") })
        );
        assert_eq!(schema.decode_bin(&[0, 7, 0, 5, 0, 9]), Err(InputError::TrailingBytes { count: 1 }));
        let json = |text: &str| {
            let j: JsonInput = serde_json::from_str(text).unwrap();
            schema.decode(&RawInput::Json(j))
        };
        assert_eq!(
            json(r#"{"steer":1,"throttle":256,"aim":0,"item":0,"score":0}"#),
            Err(InputError::OutOfRange { field: field("throttle") })
        );
        assert_eq!(
            json(r#"{"steer":1.5,"throttle":2,"aim":0,"item":0,"score":0}"#),
            Err(InputError::WrongType { field: field("steer") })
        );
        assert_eq!(
            json(r#"{"steer":"1","throttle":2,"aim":0,"item":0,"score":0}"#),
            Err(InputError::WrongType { field: field("steer") })
        );
        assert_eq!(
            json(r#"{"steer":1,"throttle":2,"item":0,"score":0}"#),
            Err(InputError::Missing { field: field("aim") })
        );
        assert_eq!(
            json(r#"{"steer":1,"throttle":2,"aim":3e10,"item":0,"score":0}"#),
            Err(InputError::OutOfRange { field: field("aim") })
        );
        assert_eq!(
            json(r#"{"steer":1,"throttle":2,"aim":0,"item":0,"score":0,"jump":1}"#),
            Err(InputError::UnknownField { name: field("jump") })
        );
        assert!(serde_json::from_str::<JsonInput>(r#"{"a":1,"a":2}"#).is_err());
        let many = (0..=MAX_INPUT_FIELDS).map(|i| format!("\"f{i}\":0")).collect::<Vec<_>>().join(",");
        assert!(serde_json::from_str::<JsonInput>(&format!("{{{many}}}")).is_err());
    }

    #[test]
    fn the_stick_is_three_raw_bytes() {
        let data = InputData { move_x: 10, move_y: -5, buttons: InputData::FIRE };
        let values = InputValues::from(data);
        assert_eq!(InputData::schema().encode(Format::Bin, &values), Ok(data.to_raw(Format::Bin)));
        assert_eq!(InputData::schema().encode(Format::Json, &values), Ok(data.to_raw(Format::Json)));
        let RawInput::Bin(b) = data.to_raw(Format::Bin) else { unreachable!() };
        assert_eq!(b.as_bytes(), [10, 0xfb, 1]);
        assert_eq!(InputData::from(InputData::schema().decode_bin(&[10, 0xfb, 1]).unwrap()), data);
        assert_eq!(values.named(InputData::schema(), "buttons"), Some(1));
    }

    #[test]
    fn values_by_name_and_index() {
        let schema = wide();
        let mut v = schema.neutral();
        assert_eq!(v.len(), 5);
        v.set_named(&schema, "item", 7).unwrap();
        assert_eq!(v.get(3), 7);
        assert_eq!(v.get(99), 0);
        assert_eq!(v.set_named(&schema, "nope", 1), Err(InputError::UnknownField { name: "nope".into() }));
        assert!(InputValues::from_slice(&[0; MAX_INPUT_FIELDS + 1]).is_none());
        assert_eq!(schema.validate(), Ok(()));
        let mut bad = schema.clone();
        bad.fields[1].name = "steer".into();
        assert!(matches!(bad.validate(), Err(SchemaError::DuplicateName { .. })));
    }
}
