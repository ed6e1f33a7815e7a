//! The input patterns, pure functions of the client's index and the
//! input's sequence number, so two runs send the same inputs:
//! - arena's (WORKLOAD.md), for every game that keeps the stick input
//!   schema: `move_x`, `move_y` turn in a circle over 4 s, fire every 2 s,
//!   the phase drawn from the index;
//! - for any other game (`--game`), [`schema_input`]: every field of the
//!   input schema `joined` carried, drawn at random within its type.

use tickforge_protocol::input::{InputSchema, InputValues};
use tickforge_protocol::message::InputData;
use tickforge_protocol::schema::FieldType;

/// Seconds for one full turn of the stick.
pub const CIRCLE_SECS: u32 = 4;
/// Seconds between two shots.
pub const FIRE_SECS: u32 = 2;

/// A client's phase in `[0, 1)`, drawn from its index (splitmix64).
#[must_use]
pub fn phase(index: usize) -> f64 {
    let mut z = (index as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The input client `index` sends as its `seq`-th input (from 1), at
/// `input_hz` inputs a second.
#[must_use]
pub fn input(index: usize, seq: u32, input_hz: u32) -> InputData {
    let hz = input_hz.max(1);
    let phase = phase(index);
    let turn = f64::from(seq) / f64::from(CIRCLE_SECS * hz) + phase;
    let angle = std::f64::consts::TAU * turn.fract();
    let fire_every = FIRE_SECS * hz;
    let fire_offset = (phase * f64::from(fire_every)) as u32;
    let fire = (seq.wrapping_add(fire_offset)) % fire_every == 0;
    InputData {
        move_x: (127.0 * angle.cos()).round() as i8,
        move_y: (127.0 * angle.sin()).round() as i8,
        buttons: u8::from(fire),
    }
}

/// splitmix64's finalizer: 64 well-mixed bits from any 64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The input client `index` sends as its `seq`-th input to a game with
/// input `schema`: each field drawn uniformly within its type (`i32` and
/// `fixed` fields within the range of an `i16`'s quantized value: a
/// stick's or a cursor's values, not a checksum's). Reproducible: the
/// same `(index, seq)` gives the same values.
#[must_use]
pub fn schema_input(schema: &InputSchema, index: usize, seq: u32) -> InputValues {
    let mut values = schema.neutral();
    let seed = mix((index as u64) << 32 | u64::from(seq));
    for (i, field) in schema.fields.iter().enumerate() {
        let (lo, hi) = match field.ty {
            FieldType::I32 | FieldType::Fixed(_) => FieldType::I16.range(),
            ty => ty.range(),
        };
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        let draw = ((u128::from(mix(seed ^ i as u64)) * u128::from(span)) >> 64) as i64;
        if let Some(v) = values.get_mut(i) {
            *v = (i64::from(lo) + draw) as i32;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickforge_protocol::Format;

    #[test]
    fn schema_inputs_fill_every_field_in_range_and_encode_in_both_forms() {
        let schema = InputSchema::new([
            ("col", FieldType::U8),
            ("steer", FieldType::I8),
            ("item", FieldType::U16),
            ("turn", FieldType::I16),
            ("aim", FieldType::Fixed(100)),
            ("n", FieldType::I32),
        ]);
        let mut seen_low = [false; 6];
        for seq in 1..=500 {
            let v = schema_input(&schema, 5, seq);
            assert_eq!(v, schema_input(&schema, 5, seq), "reproducible");
            assert_eq!(schema.check(&v), Ok(()));
            for format in [Format::Bin, Format::Json] {
                let raw = schema.encode(format, &v).unwrap();
                assert_eq!(schema.decode(&raw), Ok(v));
            }
            for (i, field) in schema.fields.iter().enumerate() {
                let (lo, hi) = field.ty.range();
                seen_low[i] |= i64::from(v.get(i)) < (i64::from(lo) + i64::from(hi)) / 2;
            }
        }
        assert!(seen_low.iter().all(|s| *s), "values spread over each range: {seen_low:?}");
        assert_ne!(schema_input(&schema, 1, 1), schema_input(&schema, 2, 1), "clients differ");
    }

    #[test]
    fn phases_are_reproducible_and_spread() {
        assert_eq!(phase(7), phase(7));
        let phases: Vec<f64> = (0..64).map(phase).collect();
        assert!(phases.iter().all(|p| (0.0..1.0).contains(p)));
        let low = phases.iter().filter(|p| **p < 0.5).count();
        assert!((16..=48).contains(&low), "{low} of 64 below 0.5");
    }

    #[test]
    fn the_stick_turns_once_in_four_seconds() {
        let hz = 30;
        let start = input(3, 1, hz);
        let after_turn = input(3, 1 + CIRCLE_SECS * hz, hz);
        assert_eq!(start.move_x, after_turn.move_x);
        assert_eq!(start.move_y, after_turn.move_y);
        let half = input(3, 1 + CIRCLE_SECS * hz / 2, hz);
        assert!((i16::from(start.move_x) + i16::from(half.move_x)).abs() <= 2);
        assert!((i16::from(start.move_y) + i16::from(half.move_y)).abs() <= 2);
        for seq in 1..200 {
            let i = input(3, seq, hz);
            let len = (f64::from(i.move_x).powi(2) + f64::from(i.move_y).powi(2)).sqrt();
            assert!((125.0..=129.0).contains(&len), "stick length {len}");
        }
    }

    #[test]
    fn fire_every_two_seconds() {
        let hz = 30;
        for index in 0..16 {
            let shots: Vec<u32> = (1..=600).filter(|&s| input(index, s, hz).buttons & 1 == 1).collect();
            assert_eq!(shots.len(), 10, "client {index}: {shots:?}");
            assert!(shots.windows(2).all(|w| w[1] - w[0] == FIRE_SECS * hz));
        }
    }
}
