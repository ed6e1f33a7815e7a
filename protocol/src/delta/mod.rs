//! State deltas: what changed between a baseline snapshot and now.
//!
//! A delta lists entities spawned (all fields), updated (changed fields
//! only) and removed (ids); a full state is the delta from nothing. Two
//! encodings share these semantics:
//! - [`bin`]: the compact blob of `tickforge.v1.bin`, encoded straight from
//!   two snapshots, with varints, zigzag, a field bitmask per entity,
//!   values sent as the difference from what the baseline predicts, and
//!   dead reckoning for fields that declare `integrates`;
//! - [`json`]: the readable object of `tickforge.v1.json`, made from a plain
//!   [`Delta`] (absolute values of the fields that differ from the baseline).
//!
//! Both decoders take untrusted bytes and the receiver's baseline, and refuse
//! anything that does not apply cleanly with a typed [`DeltaError`]: never
//! a silent mis-apply.

pub mod bin;
pub mod json;

use crate::ids::{EntityId, Tick};
use crate::schema::{Schema, MAX_FIELDS};
use crate::snapshot::{Entity, Snapshot};
use thiserror::Error;

/// A plain delta: absolute values of what differs from the baseline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// New entities (or ones whose kind changed), all fields; ascending ids.
    pub spawned: Vec<Entity>,
    /// Entities whose fields changed; ascending ids.
    pub updated: Vec<EntityUpdate>,
    /// Ids of entities gone; ascending.
    pub removed: Vec<EntityId>,
}

/// The changed fields of one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityUpdate {
    /// The entity.
    pub id: EntityId,
    /// Bit `i` set = field `i` changed.
    pub mask: u32,
    /// New values at the masked positions; 0 elsewhere.
    pub values: [i32; MAX_FIELDS],
}

/// Why a delta could not be applied (or decoded).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// The delta is against a baseline the receiver does not hold.
    #[error("delta against tick {baseline}, which this client does not hold")]
    MissingBaseline {
        /// The tick the delta was against.
        baseline: Tick,
    },
    /// The bytes end in the middle of a value.
    #[error("state bytes are truncated")]
    Truncated,
    /// A varint that is too long or too large.
    #[error("malformed varint in state bytes")]
    BadVarint,
    /// Bytes left over after the state.
    #[error("{0} bytes left over after the state")]
    TrailingBytes(usize),
    /// Ids not strictly ascending within a list.
    #[error("entity ids are not ascending")]
    UnorderedIds,
    /// An update or removal of an entity the baseline does not have.
    #[error("entity {0:?} is not in the baseline")]
    UnknownEntity(EntityId),
    /// A spawn of an entity that already exists.
    #[error("entity {0:?} spawned twice")]
    DuplicateEntity(EntityId),
    /// An entity kind the schema does not name.
    #[error("entity kind {0} is not in the schema")]
    UnknownKind(u32),
    /// A field the schema does not have.
    #[error("field {0:?} is not in the schema")]
    UnknownField(String),
    /// A value out of its field type's range, or of the wrong JSON type.
    #[error("field {field:?} has an invalid value")]
    BadValue {
        /// The field's name.
        field: String,
    },
    /// A spawned entity without every field.
    #[error("spawned entity {0:?} lacks fields")]
    MissingFields(EntityId),
    /// JSON that is not the state object.
    #[error("state JSON is malformed: {0}")]
    Json(String),
    /// More entities than the receiver accepts.
    #[error("state holds more than {max} entities")]
    TooManyEntities {
        /// The bound.
        max: usize,
    },
}

/// The most entities a decoded state may hold: bounds what untrusted bytes
/// can make a receiver allocate.
pub const MAX_ENTITIES: usize = 65_536;

fn field_mask(count: usize) -> u32 {
    if count >= 32 {
        u32::MAX
    } else {
        (1u32 << count) - 1
    }
}

/// The plain delta from `base` (or from nothing) to `current`.
///
/// Both snapshots must be sorted by id ([`Snapshot::is_well_formed`]).
#[must_use]
pub fn diff(schema: &Schema, base: Option<&Snapshot>, current: &Snapshot) -> Delta {
    let mut delta = Delta::default();
    diff_into(schema, base, current, &mut delta);
    delta
}

/// [`diff`] into a caller-owned delta, reusing its allocations.
pub fn diff_into(schema: &Schema, base: Option<&Snapshot>, current: &Snapshot, delta: &mut Delta) {
    delta.spawned.clear();
    delta.updated.clear();
    delta.removed.clear();
    let empty: &[Entity] = &[];
    let old = base.map_or(empty, |b| &b.entities[..]);
    let nfields = schema.fields.len().min(MAX_FIELDS);
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < current.entities.len() {
        match (old.get(i), current.entities.get(j)) {
            (Some(a), Some(b)) if a.id == b.id => {
                if a.kind != b.kind {
                    delta.removed.push(a.id);
                    delta.spawned.push(*b);
                } else {
                    let mut mask = 0u32;
                    let mut values = [0; MAX_FIELDS];
                    for f in 0..nfields {
                        if a.values[f] != b.values[f] {
                            mask |= 1 << f;
                            values[f] = b.values[f];
                        }
                    }
                    if mask != 0 {
                        delta.updated.push(EntityUpdate { id: b.id, mask, values });
                    }
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.id < b.id => {
                delta.removed.push(a.id);
                i += 1;
            }
            (Some(a), None) => {
                delta.removed.push(a.id);
                i += 1;
            }
            (_, Some(b)) => {
                delta.spawned.push(*b);
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
}

/// Applies a plain delta to `base` (or to nothing), giving the state at `tick`.
///
/// # Errors
/// [`DeltaError::UnknownEntity`] for an update or removal of an id the base
/// lacks, [`DeltaError::DuplicateEntity`] for a spawn of one it keeps,
/// [`DeltaError::UnorderedIds`] for lists not in ascending order.
pub fn apply(base: Option<&Snapshot>, delta: &Delta, tick: Tick) -> Result<Snapshot, DeltaError> {
    let ascending = |ids: &mut dyn Iterator<Item = EntityId>| {
        let mut prev: Option<EntityId> = None;
        for id in ids {
            if prev.is_some_and(|p| p >= id) {
                return Err(DeltaError::UnorderedIds);
            }
            prev = Some(id);
        }
        Ok(())
    };
    ascending(&mut delta.removed.iter().copied())?;
    ascending(&mut delta.updated.iter().map(|u| u.id))?;
    ascending(&mut delta.spawned.iter().map(|e| e.id))?;

    let empty: &[Entity] = &[];
    let old = base.map_or(empty, |b| &b.entities[..]);
    let mut out = Vec::with_capacity(old.len() + delta.spawned.len());
    let (mut removed, mut updated) = (delta.removed.iter().peekable(), delta.updated.iter().peekable());
    for entity in old {
        if let Some(&&id) = removed.peek() {
            if id < entity.id {
                return Err(DeltaError::UnknownEntity(id));
            }
            if id == entity.id {
                removed.next();
                if updated.peek().is_some_and(|u| u.id == id) {
                    return Err(DeltaError::UnknownEntity(id));
                }
                continue;
            }
        }
        let mut entity = *entity;
        if let Some(u) = updated.peek() {
            if u.id < entity.id {
                return Err(DeltaError::UnknownEntity(u.id));
            }
            if u.id == entity.id {
                for f in 0..MAX_FIELDS {
                    if u.mask & (1 << f) != 0 {
                        entity.values[f] = u.values[f];
                    }
                }
                updated.next();
            }
        }
        out.push(entity);
    }
    if let Some(&id) = removed.next() {
        return Err(DeltaError::UnknownEntity(id));
    }
    if let Some(u) = updated.next() {
        return Err(DeltaError::UnknownEntity(u.id));
    }
    merge_spawned(&mut out, &delta.spawned)?;
    Ok(Snapshot { tick, entities: out })
}

/// Merges ascending `spawned` into ascending `entities`, refusing ids present.
pub(crate) fn merge_spawned(entities: &mut Vec<Entity>, spawned: &[Entity]) -> Result<(), DeltaError> {
    if spawned.is_empty() {
        return Ok(());
    }
    let old = std::mem::take(entities);
    entities.reserve(old.len() + spawned.len());
    let (mut a, mut b) = (old.into_iter().peekable(), spawned.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.id == y.id => return Err(DeltaError::DuplicateEntity(x.id)),
            (Some(x), Some(y)) if x.id < y.id => entities.extend(a.next()),
            (Some(_), None) => entities.extend(a.next()),
            (_, Some(_)) => entities.extend(b.next().copied()),
            (None, None) => return Ok(()),
        }
    }
}

/// Checks an entity's kind and values against the schema.
pub(crate) fn check_entity(schema: &Schema, entity: &Entity) -> Result<(), DeltaError> {
    if usize::from(entity.kind) >= schema.kinds.len() {
        return Err(DeltaError::UnknownKind(u32::from(entity.kind)));
    }
    for (f, def) in schema.fields.iter().enumerate() {
        if !def.ty.holds(entity.values[f]) {
            return Err(DeltaError::BadValue { field: def.name.clone() });
        }
    }
    Ok(())
}

/// The mask of every field of the schema.
pub(crate) fn all_fields(schema: &Schema) -> u32 {
    field_mask(schema.fields.len().min(MAX_FIELDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldDef, FieldType};

    fn schema() -> Schema {
        Schema {
            kinds: vec!["a".into(), "b".into()],
            fields: vec![
                FieldDef { name: "x".into(), ty: FieldType::I32, integrates: None },
                FieldDef { name: "hp".into(), ty: FieldType::U8, integrates: None },
            ],
        }
    }

    fn entity(id: u32, kind: u8, x: i32, hp: i32) -> Entity {
        let mut e = Entity::new(EntityId(id), kind);
        e.values[0] = x;
        e.values[1] = hp;
        e
    }

    #[test]
    fn diff_lists_spawned_updated_and_removed() {
        let a =
            Snapshot { tick: Tick(1), entities: vec![entity(1, 0, 5, 100), entity(2, 0, 7, 100), entity(3, 0, 0, 1)] };
        let b =
            Snapshot { tick: Tick(2), entities: vec![entity(1, 0, 6, 100), entity(3, 1, 0, 1), entity(4, 0, 1, 1)] };
        let d = diff(&schema(), Some(&a), &b);
        assert_eq!(d.removed, vec![EntityId(2), EntityId(3)]);
        assert_eq!(d.spawned, vec![entity(3, 1, 0, 1), entity(4, 0, 1, 1)]);
        assert_eq!(d.updated.len(), 1);
        assert_eq!((d.updated[0].id, d.updated[0].mask, d.updated[0].values[0]), (EntityId(1), 0b01, 6));
        assert_eq!(apply(Some(&a), &d, Tick(2)), Ok(b.clone()));
        let full = diff(&schema(), None, &b);
        assert_eq!(apply(None, &full, Tick(2)), Ok(b));
    }

    #[test]
    fn apply_refuses_what_the_base_lacks() {
        let a = Snapshot { tick: Tick(1), entities: vec![entity(1, 0, 5, 100)] };
        let mut d = Delta::default();
        d.removed.push(EntityId(9));
        assert_eq!(apply(Some(&a), &d, Tick(2)), Err(DeltaError::UnknownEntity(EntityId(9))));
        let mut d = Delta::default();
        d.updated.push(EntityUpdate { id: EntityId(2), mask: 1, values: [0; MAX_FIELDS] });
        assert_eq!(apply(Some(&a), &d, Tick(2)), Err(DeltaError::UnknownEntity(EntityId(2))));
        let mut d = Delta::default();
        d.spawned.push(entity(1, 0, 0, 0));
        assert_eq!(apply(Some(&a), &d, Tick(2)), Err(DeltaError::DuplicateEntity(EntityId(1))));
        let d = Delta { removed: vec![EntityId(1), EntityId(1)], ..Delta::default() };
        assert_eq!(apply(Some(&a), &d, Tick(2)), Err(DeltaError::UnorderedIds));
    }
}
