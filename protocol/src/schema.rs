//! Entity schemas: the fields a game's entities carry, their types and
//! quantization, and which fields move by dead reckoning.
//!
//! A game declares one [`Schema`]; the room sends it in `joined`, so any
//! client can read the room's ticks without knowing the game in advance.
//! Every field value is stored quantized as an `i32` (for
//! [`FieldType::Fixed`], `value * scale` rounded), so the server's
//! authoritative snapshot and every client's rebuilt copy are bit-exact.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The most fields an entity may have (the update bitmask is a `u32`, the
/// value array a fixed size so snapshots never allocate per entity).
pub const MAX_FIELDS: usize = 12;

/// The fields of a game's entities and the names of its entity kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct Schema {
    /// Entity kind names; an entity's `kind` is an index into this list.
    pub kinds: Vec<String>,
    /// The fields every entity carries besides `id` and `kind`, in order.
    pub fields: Vec<FieldDef>,
}

/// One field of an entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct FieldDef {
    /// The field's name in JSON (`x`, `hp`, ...).
    pub name: String,
    /// The field's type and quantization.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Index of a velocity field (units per second, same scale) that moves
    /// this field each tick by [`step_per_tick`]: the binary delta sends only
    /// what differs from that extrapolation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrates: Option<u8>,
}

/// A field's type: its range and, for `fixed`, its quantization step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// 0..=255.
    U8,
    /// 0..=65535.
    U16,
    /// -32768..=32767.
    I16,
    /// Any i32.
    I32,
    /// A real number quantized to steps of `1 / scale` (stored as
    /// `round(value * scale)` in an i32; JSON shows the quantized value).
    Fixed(u32),
    /// -128..=127 (appended after `fixed`: variant indices never move).
    I8,
}

impl FieldType {
    /// The smallest and largest quantized value the type holds.
    #[must_use]
    pub fn range(self) -> (i32, i32) {
        match self {
            Self::U8 => (0, 255),
            Self::I8 => (-128, 127),
            Self::U16 => (0, 65_535),
            Self::I16 => (-32_768, 32_767),
            Self::I32 | Self::Fixed(_) => (i32::MIN, i32::MAX),
        }
    }

    /// Whether `q` is a value of this type.
    #[must_use]
    pub fn holds(self, q: i32) -> bool {
        let (lo, hi) = self.range();
        (lo..=hi).contains(&q)
    }

    /// Quantizes a real value: `round(value * scale)` for `fixed`, plain
    /// rounding otherwise; saturates at the type's range (NaN gives 0).
    #[must_use]
    pub fn quantize(self, value: f64) -> i32 {
        let scaled = match self {
            Self::Fixed(scale) => value * f64::from(scale),
            _ => value,
        };
        let (lo, hi) = self.range();
        // `as` saturates and maps NaN to 0, which is the rule we want.
        (scaled.round() as i64).clamp(i64::from(lo), i64::from(hi)) as i32
    }

    /// The real value of a quantized one (`q / scale` for `fixed`).
    #[must_use]
    pub fn dequantize(self, q: i32) -> f64 {
        match self {
            Self::Fixed(scale) => f64::from(q) / f64::from(scale.max(1)),
            _ => f64::from(q),
        }
    }
}

/// The displacement one tick of a velocity gives, both quantized with the
/// same scale: `v_q / tick_hz` rounded half away from zero.
///
/// Games that declare `integrates` must move the field by exactly this much
/// per tick (then clamp as they like), so that the extrapolation the binary
/// delta relies on is exact on both ends.
#[must_use]
pub fn step_per_tick(v_q: i32, tick_hz: u32) -> i32 {
    let hz = i64::from(tick_hz.max(1));
    let v = i64::from(v_q);
    let half = hz / 2;
    let step = if v >= 0 { (v + half) / hz } else { (v - half) / hz };
    step as i32
}

/// A schema that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// More fields than [`MAX_FIELDS`].
    #[error("schema has {count} fields, at most {MAX_FIELDS} are supported")]
    TooManyFields {
        /// How many the schema has.
        count: usize,
    },
    /// More input fields than [`crate::input::MAX_INPUT_FIELDS`].
    #[error("input schema has {count} fields, at most {} are supported", crate::input::MAX_INPUT_FIELDS)]
    TooManyInputFields {
        /// How many the input schema has.
        count: usize,
    },
    /// No kinds, or more than 256.
    #[error("schema has {count} entity kinds, 1 to 256 are supported")]
    BadKindCount {
        /// How many the schema has.
        count: usize,
    },
    /// Two fields share a name, or an entity field uses a reserved name
    /// (`id`, `kind`).
    #[error("field name {name:?} is used twice or reserved")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A `fixed` field with scale 0.
    #[error("field {name:?} has scale 0")]
    ZeroScale {
        /// The field.
        name: String,
    },
    /// Two kinds share a name (JSON names kinds, so they must differ).
    #[error("entity kind {name:?} is named twice")]
    DuplicateKind {
        /// The name.
        name: String,
    },
    /// `integrates` names a field that is not a `fixed` of the same scale.
    #[error("field {name:?} integrates field {index}, which is not a fixed field of the same scale")]
    BadIntegrates {
        /// The field.
        name: String,
        /// The index it names.
        index: u8,
    },
}

impl Schema {
    /// Checks the schema is usable: field count, names, scales, `integrates`.
    ///
    /// # Errors
    /// The first [`SchemaError`] found.
    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.fields.len() > MAX_FIELDS {
            return Err(SchemaError::TooManyFields { count: self.fields.len() });
        }
        if self.kinds.is_empty() || self.kinds.len() > 256 {
            return Err(SchemaError::BadKindCount { count: self.kinds.len() });
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            if self.kinds[..i].contains(kind) {
                return Err(SchemaError::DuplicateKind { name: kind.clone() });
            }
        }
        for (i, field) in self.fields.iter().enumerate() {
            let reserved = field.name == "id" || field.name == "kind";
            if reserved || self.fields[..i].iter().any(|f| f.name == field.name) {
                return Err(SchemaError::DuplicateName { name: field.name.clone() });
            }
            if field.ty == FieldType::Fixed(0) {
                return Err(SchemaError::ZeroScale { name: field.name.clone() });
            }
            if let Some(index) = field.integrates {
                let ok = matches!(
                    (field.ty, self.fields.get(usize::from(index)).map(|v| v.ty)),
                    (FieldType::Fixed(a), Some(FieldType::Fixed(b))) if a == b && usize::from(index) != i
                );
                if !ok {
                    return Err(SchemaError::BadIntegrates { name: field.name.clone(), index });
                }
            }
        }
        Ok(())
    }

    /// The index of the field called `name`.
    #[must_use]
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The index of the kind called `name`.
    #[must_use]
    pub fn kind_index(&self, name: &str) -> Option<u8> {
        self.kinds.iter().position(|k| k == name).and_then(|i| u8::try_from(i).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_per_tick_rounds_half_away_from_zero() {
        assert_eq!(step_per_tick(3200, 30), 107); // 106.67
        assert_eq!(step_per_tick(-3200, 30), -107);
        assert_eq!(step_per_tick(15, 30), 1); // 0.5 rounds away
        assert_eq!(step_per_tick(-15, 30), -1);
        assert_eq!(step_per_tick(14, 30), 0);
        assert_eq!(step_per_tick(5, 0), 5); // a zero rate is read as 1 Hz
    }

    #[test]
    fn quantize_saturates_and_rounds() {
        assert_eq!(FieldType::Fixed(16).quantize(10.5), 168);
        assert_eq!(FieldType::Fixed(16).dequantize(168), 10.5);
        assert_eq!(FieldType::U8.quantize(300.0), 255);
        assert_eq!(FieldType::U8.quantize(-3.0), 0);
        assert_eq!(FieldType::I32.quantize(f64::NAN), 0);
    }

    #[test]
    fn validate_catches_bad_schemas() {
        let field = |name: &str, ty, integrates| FieldDef { name: name.into(), ty, integrates };
        let ok = Schema {
            kinds: vec!["a".into()],
            fields: vec![field("x", FieldType::Fixed(16), Some(1)), field("vx", FieldType::Fixed(16), None)],
        };
        assert_eq!(ok.validate(), Ok(()));
        let mut bad = ok.clone();
        bad.fields[0].integrates = Some(0);
        assert!(matches!(bad.validate(), Err(SchemaError::BadIntegrates { .. })));
        let mut bad = ok.clone();
        bad.fields[1].name = "x".into();
        assert!(matches!(bad.validate(), Err(SchemaError::DuplicateName { .. })));
        let mut bad = ok.clone();
        bad.kinds.push("a".into());
        assert_eq!(bad.validate(), Err(SchemaError::DuplicateKind { name: "a".into() }));
        let mut bad = ok;
        bad.kinds.clear();
        assert!(matches!(bad.validate(), Err(SchemaError::BadKindCount { .. })));
    }
}
