//! The binary state blob of `tickforge.v1.bin`.
//!
//! Layout (every number a LEB128 varint unless marked; ids within a list
//! ascending, the first written as is, the rest as the gap from the one
//! before, which is at least 1):
//!
//! ```text
//! removed_count  { id_gap }*
//! updated_count  { id_gap  field_mask  { residual: zigzag }* per set bit }*
//! spawned_count  { id_gap  kind: u8 byte  { value }* per schema field }*
//! ```
//!
//! A spawned value is a plain varint for `u8`/`u16` fields and zigzag for
//! signed ones. An updated value is sent as its residual: the new value
//! minus the value the receiver predicts from the baseline, which is the
//! baseline value itself, or for a field that `integrates` a velocity
//! `v`: `base + ticks * step_per_tick(base_v, tick_hz)` (i64, wrapped to
//! i32), where `ticks = tick - baseline`. An entity whose every field equals
//! its prediction is not listed at all: on a receiver it advances by the
//! prediction. So an entity moving in a straight line costs nothing.

use super::{all_fields, check_entity, merge_spawned, DeltaError, MAX_ENTITIES};
use crate::ids::{EntityId, Tick};
use crate::schema::{step_per_tick, FieldType, Schema, MAX_FIELDS};
use crate::snapshot::{Entity, Snapshot};
use crate::varint::{self, Reader};

/// What a receiver predicts for `base` after `ticks` ticks.
fn predict(schema: &Schema, tick_hz: u32, base: &Entity, ticks: u64) -> [i32; MAX_FIELDS] {
    let mut out = base.values;
    let ticks = i64::try_from(ticks).unwrap_or(i64::MAX);
    for (f, def) in schema.fields.iter().enumerate().take(MAX_FIELDS) {
        if let Some(v) = def.integrates {
            let v = usize::from(v);
            if v < MAX_FIELDS {
                let step = i64::from(step_per_tick(base.values[v], tick_hz));
                // Wrapping on purpose: both ends compute the same bits.
                out[f] = i64::from(base.values[f]).wrapping_add(ticks.wrapping_mul(step)) as i32;
            }
        }
    }
    out
}

fn put_value(out: &mut Vec<u8>, ty: FieldType, v: i32) {
    match ty {
        FieldType::U8 | FieldType::U16 => varint::put(out, u64::from(v as u32)),
        _ => varint::put_signed(out, v),
    }
}

fn get_value(r: &mut Reader<'_>, ty: FieldType) -> Result<i32, DeltaError> {
    match ty {
        FieldType::U8 | FieldType::U16 => {
            let v = r.u32()?;
            i32::try_from(v).map_err(|_| DeltaError::BadVarint)
        }
        _ => r.signed(),
    }
}

/// Encodes binary state blobs, keeping its scratch lists between calls so
/// that a room's per-tick encoding does not allocate.
#[derive(Debug, Default)]
pub struct Encoder {
    removed: Vec<EntityId>,
    updated: Vec<(usize, usize)>,
    spawned: Vec<usize>,
}

impl Encoder {
    /// Appends the blob for the delta from `base` (or from nothing) to
    /// `current` to `out`. Both snapshots must be sorted by id.
    pub fn encode(
        &mut self,
        schema: &Schema,
        tick_hz: u32,
        base: Option<&Snapshot>,
        current: &Snapshot,
        out: &mut Vec<u8>,
    ) {
        self.removed.clear();
        self.updated.clear();
        self.spawned.clear();
        let empty: &[Entity] = &[];
        let old = base.map_or(empty, |b| &b.entities[..]);
        let ticks = base.map_or(0, |b| current.tick.since(b.tick));
        let nfields = schema.fields.len().min(MAX_FIELDS);
        let cur = &current.entities;
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < cur.len() {
            match (old.get(i), cur.get(j)) {
                (Some(a), Some(b)) if a.id == b.id => {
                    if a.kind != b.kind {
                        self.removed.push(a.id);
                        self.spawned.push(j);
                    } else if predict(schema, tick_hz, a, ticks)[..nfields] != b.values[..nfields] {
                        self.updated.push((i, j));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.id < b.id => {
                    self.removed.push(a.id);
                    i += 1;
                }
                (Some(a), None) => {
                    self.removed.push(a.id);
                    i += 1;
                }
                (_, Some(_)) => {
                    self.spawned.push(j);
                    j += 1;
                }
                (None, None) => unreachable!("loop condition"),
            }
        }

        varint::put(out, self.removed.len() as u64);
        let mut prev = 0;
        for id in &self.removed {
            varint::put(out, u64::from(id.0 - prev));
            prev = id.0;
        }

        varint::put(out, self.updated.len() as u64);
        let mut prev = 0;
        for &(i, j) in &self.updated {
            let (a, b) = (&old[i], &cur[j]);
            let predicted = predict(schema, tick_hz, a, ticks);
            varint::put(out, u64::from(b.id.0 - prev));
            prev = b.id.0;
            let mut mask = 0u32;
            for f in 0..nfields {
                if predicted[f] != b.values[f] {
                    mask |= 1 << f;
                }
            }
            varint::put(out, u64::from(mask));
            for f in 0..nfields {
                if mask & (1 << f) != 0 {
                    varint::put_signed(out, b.values[f].wrapping_sub(predicted[f]));
                }
            }
        }

        varint::put(out, self.spawned.len() as u64);
        let mut prev = 0;
        for &j in &self.spawned {
            let e = &cur[j];
            varint::put(out, u64::from(e.id.0 - prev));
            prev = e.id.0;
            out.push(e.kind);
            for (f, def) in schema.fields.iter().enumerate().take(nfields) {
                put_value(out, def.ty, e.values[f]);
            }
        }
    }
}

/// Appends the blob for the delta from `base` to `current` (one-off; a
/// room keeps an [`Encoder`] instead).
pub fn encode(schema: &Schema, tick_hz: u32, base: Option<&Snapshot>, current: &Snapshot, out: &mut Vec<u8>) {
    Encoder::default().encode(schema, tick_hz, base, current, out);
}

/// Reads a list count, bounded by [`MAX_ENTITIES`] and by the bytes left
/// (each entry takes at least one byte), so a forged count allocates nothing.
fn count(r: &mut Reader<'_>) -> Result<usize, DeltaError> {
    let n = r.u32()? as usize;
    if n > MAX_ENTITIES {
        return Err(DeltaError::TooManyEntities { max: MAX_ENTITIES });
    }
    if n > r.remaining() {
        return Err(DeltaError::Truncated);
    }
    Ok(n)
}

fn next_id(r: &mut Reader<'_>, prev: &mut Option<u32>) -> Result<EntityId, DeltaError> {
    let gap = r.u32()?;
    let id = match *prev {
        None => gap,
        Some(_) if gap == 0 => return Err(DeltaError::UnorderedIds),
        Some(p) => p.checked_add(gap).ok_or(DeltaError::BadVarint)?,
    };
    *prev = Some(id);
    Ok(EntityId(id))
}

/// A cursor over the baseline's entities while a blob is applied.
struct BaseWalk<'a> {
    schema: &'a Schema,
    tick_hz: u32,
    ticks: u64,
    old: &'a [Entity],
    removed: &'a [EntityId],
    oi: usize,
    ri: usize,
}

impl BaseWalk<'_> {
    /// Carries base entities with ids below `limit` (all when `None`) into
    /// `entities`: removed ones dropped, the rest advanced by the prediction.
    fn advance_to(&mut self, limit: Option<EntityId>, entities: &mut Vec<Entity>) -> Result<(), DeltaError> {
        while let Some(a) = self.old.get(self.oi) {
            if limit.is_some_and(|l| a.id >= l) {
                break;
            }
            self.oi += 1;
            match self.removed.get(self.ri) {
                Some(&id) if id == a.id => {
                    self.ri += 1;
                    continue;
                }
                Some(&id) if id < a.id => return Err(DeltaError::UnknownEntity(id)),
                _ => {}
            }
            let mut e = *a;
            e.values = predict(self.schema, self.tick_hz, a, self.ticks);
            entities.push(e);
        }
        Ok(())
    }
}

/// Decodes a blob and applies it to `base` (or to nothing), giving the state
/// at `tick`. `base` must be the snapshot of the message's `baseline`.
///
/// # Errors
/// Any [`DeltaError`]: malformed bytes, an id the base lacks or already
/// holds, a kind or value the schema does not allow, trailing bytes.
pub fn apply(
    schema: &Schema,
    tick_hz: u32,
    base: Option<&Snapshot>,
    tick: Tick,
    bytes: &[u8],
) -> Result<Snapshot, DeltaError> {
    let mut r = Reader::new(bytes);
    let nfields = schema.fields.len().min(MAX_FIELDS);
    let full_mask = all_fields(schema);
    let empty: &[Entity] = &[];
    let old = base.map_or(empty, |b| &b.entities[..]);
    let ticks = base.map_or(0, |b| tick.since(b.tick));

    let n = count(&mut r)?;
    let mut removed = Vec::with_capacity(n);
    let mut prev = None;
    for _ in 0..n {
        removed.push(next_id(&mut r, &mut prev)?);
    }

    let n = count(&mut r)?;
    let mut entities = Vec::with_capacity(old.len() + n);
    let mut prev = None;
    // Walk the base in id order: drop removed ones, advance the rest by the
    // prediction, and apply each listed update to its entity.
    let mut walk = BaseWalk { schema, tick_hz, ticks, old, removed: &removed, oi: 0, ri: 0 };
    for _ in 0..n {
        let id = next_id(&mut r, &mut prev)?;
        walk.advance_to(Some(id), &mut entities)?;
        let mask = r.u32()?;
        if mask & !full_mask != 0 {
            return Err(DeltaError::UnknownField(format!("bit {}", (mask & !full_mask).trailing_zeros())));
        }
        // The update's entity must be the next base entity, and not removed.
        let base_entity = match walk.old.get(walk.oi) {
            Some(a) if a.id == id && walk.removed.get(walk.ri) != Some(&id) => a,
            _ => return Err(DeltaError::UnknownEntity(id)),
        };
        walk.oi += 1;
        let mut e = *base_entity;
        e.values = predict(schema, tick_hz, base_entity, ticks);
        for (f, def) in schema.fields.iter().enumerate().take(nfields) {
            if mask & (1 << f) != 0 {
                e.values[f] = e.values[f].wrapping_add(r.signed()?);
                if !def.ty.holds(e.values[f]) {
                    return Err(DeltaError::BadValue { field: def.name.clone() });
                }
            }
        }
        entities.push(e);
    }
    walk.advance_to(None, &mut entities)?;
    if let Some(&id) = removed.get(walk.ri) {
        return Err(DeltaError::UnknownEntity(id));
    }

    let n = count(&mut r)?;
    let mut spawned = Vec::with_capacity(n);
    let mut prev = None;
    for _ in 0..n {
        let id = next_id(&mut r, &mut prev)?;
        let mut e = Entity::new(id, r.byte()?);
        for (f, def) in schema.fields.iter().enumerate().take(nfields) {
            e.values[f] = get_value(&mut r, def.ty)?;
        }
        check_entity(schema, &e)?;
        spawned.push(e);
    }
    if !r.is_empty() {
        return Err(DeltaError::TrailingBytes(r.remaining()));
    }
    if entities.len() + spawned.len() > MAX_ENTITIES {
        return Err(DeltaError::TooManyEntities { max: MAX_ENTITIES });
    }
    merge_spawned(&mut entities, &spawned)?;
    Ok(Snapshot { tick, entities })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldDef;

    fn schema() -> Schema {
        let f = |name: &str, ty, integrates| FieldDef { name: name.into(), ty, integrates };
        Schema {
            kinds: vec!["mover".into()],
            fields: vec![
                f("x", FieldType::Fixed(16), Some(1)),
                f("vx", FieldType::Fixed(16), None),
                f("hp", FieldType::U8, None),
            ],
        }
    }

    fn mover(id: u32, x: i32, vx: i32) -> Entity {
        let mut e = Entity::new(EntityId(id), 0);
        e.values[..3].copy_from_slice(&[x, vx, 100]);
        e
    }

    #[test]
    fn a_straight_mover_costs_nothing_and_is_rebuilt() {
        let s = schema();
        let a = Snapshot { tick: Tick(10), entities: vec![mover(1, 0, 3200)] };
        let step = step_per_tick(3200, 30);
        let b = Snapshot { tick: Tick(12), entities: vec![mover(1, 2 * step, 3200)] };
        let mut out = Vec::new();
        encode(&s, 30, Some(&a), &b, &mut out);
        assert_eq!(out, [0, 0, 0], "nothing removed, updated or spawned");
        assert_eq!(apply(&s, 30, Some(&a), Tick(12), &out), Ok(b));
    }

    #[test]
    fn literal_bytes_of_a_small_delta() {
        let s = schema();
        let a = Snapshot { tick: Tick(1), entities: vec![mover(1, 0, 0), mover(3, 0, 0)] };
        let mut hurt = mover(1, 0, 0);
        hurt.values[2] = 90;
        let b = Snapshot { tick: Tick(2), entities: vec![hurt, mover(5, 16, -16)] };
        let mut out = Vec::new();
        encode(&s, 30, Some(&a), &b, &mut out);
        #[rustfmt::skip]
        let expected = [
            1, 3,                // removed: [3]
            1, 1, 0b100, 19,     // updated: id 1, mask hp, residual -10 (zigzag 19)
            1, 5, 0, 32, 31, 100 // spawned: id 5, kind 0, x 16 (zz 32), vx -16 (zz 31), hp 100
        ];
        assert_eq!(out, expected);
        assert_eq!(apply(&s, 30, Some(&a), Tick(2), &out), Ok(b));
    }

    #[test]
    fn bad_blobs_are_refused() {
        let s = schema();
        let a = Snapshot { tick: Tick(1), entities: vec![mover(1, 0, 0)] };
        let cases: [(&[u8], DeltaError); 6] = [
            (&[1, 2, 0, 0], DeltaError::UnknownEntity(EntityId(2))),
            (&[0, 1, 9, 1, 0, 0], DeltaError::UnknownEntity(EntityId(9))),
            (&[0, 1, 1, 0b1000, 0, 0], DeltaError::UnknownField("bit 3".into())),
            (&[0, 0, 1, 1, 0, 0, 0, 1], DeltaError::DuplicateEntity(EntityId(1))),
            (&[0, 0, 0, 7], DeltaError::TrailingBytes(1)),
            (&[0, 0, 200, 1], DeltaError::Truncated),
        ];
        for (bytes, err) in cases {
            assert_eq!(apply(&s, 30, Some(&a), Tick(2), bytes), Err(err), "{bytes:?}");
        }
        // u8 field over its range.
        assert!(matches!(
            apply(&s, 30, None, Tick(2), &[0, 0, 1, 1, 0, 0, 0, 0x80, 0x02]),
            Err(DeltaError::BadValue { .. })
        ));
    }
}
