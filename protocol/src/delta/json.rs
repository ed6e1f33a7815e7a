//! The readable state object of `tickforge.v1.json`.
//!
//! ```json
//! {"spawned":[{"id":4,"kind":"player","x":10.5,"y":3.0,"hp":100}],
//!  "updated":[{"id":4,"x":11.0}],
//!  "removed":[9]}
//! ```
//!
//! Fields by the schema's names, kinds by name, `fixed` fields as the
//! quantized real value (`q / scale`, which a JSON number carries exactly
//! for the power-of-two scales the built-in games use), others as integers.
//! `updated` entries carry only the fields that differ from the baseline
//! (no dead reckoning: a JSON reader needs no prediction).

use super::{check_entity, Delta, DeltaError, EntityUpdate, MAX_ENTITIES};
use crate::ids::EntityId;
use crate::schema::{FieldType, Schema, MAX_FIELDS};
use crate::snapshot::Entity;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::Write;

fn put_value(out: &mut Vec<u8>, ty: FieldType, q: i32) {
    match ty {
        FieldType::Fixed(_) => {
            // serde_json prints floats in the shortest form that reads back
            // exactly, always with a fraction (11 -> "11.0").
            serde_json::to_writer(&mut *out, &ty.dequantize(q)).expect("writing to a Vec cannot fail");
        }
        _ => write!(out, "{q}").expect("writing to a Vec cannot fail"),
    }
}

fn put_fields(out: &mut Vec<u8>, schema: &Schema, mask: u32, values: &[i32; MAX_FIELDS]) {
    for (f, def) in schema.fields.iter().enumerate().take(MAX_FIELDS) {
        if mask & (1 << f) != 0 {
            out.push(b',');
            serde_json::to_writer(&mut *out, &def.name).expect("writing to a Vec cannot fail");
            out.push(b':');
            put_value(out, def.ty, values[f]);
        }
    }
}

/// Appends the JSON object text of `delta` to `out`.
pub fn write(schema: &Schema, delta: &Delta, out: &mut Vec<u8>) {
    let all = super::all_fields(schema);
    out.extend_from_slice(b"{\"spawned\":[");
    for (i, e) in delta.spawned.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "{{\"id\":{},\"kind\":", e.id.0).expect("writing to a Vec cannot fail");
        let kind = schema.kinds.get(usize::from(e.kind)).map_or("?", String::as_str);
        serde_json::to_writer(&mut *out, kind).expect("writing to a Vec cannot fail");
        put_fields(out, schema, all, &e.values);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"updated\":[");
    for (i, u) in delta.updated.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "{{\"id\":{}", u.id.0).expect("writing to a Vec cannot fail");
        put_fields(out, schema, u.mask, &u.values);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"removed\":[");
    for (i, id) in delta.removed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "{}", id.0).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b"]}");
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    spawned: Vec<Map<String, Value>>,
    #[serde(default)]
    updated: Vec<Map<String, Value>>,
    #[serde(default)]
    removed: Vec<u32>,
}

fn read_value(def_name: &str, ty: FieldType, v: &Value) -> Result<i32, DeltaError> {
    let bad = || DeltaError::BadValue { field: def_name.to_owned() };
    let q = match ty {
        FieldType::Fixed(_) => ty.quantize(v.as_f64().ok_or_else(bad)?),
        _ => i32::try_from(v.as_i64().ok_or_else(bad)?).map_err(|_| bad())?,
    };
    if ty.holds(q) {
        Ok(q)
    } else {
        Err(bad())
    }
}

fn read_id(obj: &Map<String, Value>) -> Result<EntityId, DeltaError> {
    let id = obj.get("id").and_then(Value::as_u64).ok_or_else(|| DeltaError::BadValue { field: "id".into() })?;
    u32::try_from(id).map(EntityId).map_err(|_| DeltaError::BadValue { field: "id".into() })
}

/// Reads the fields of `obj` other than `id`/`kind` into `values`, returning
/// the mask of those present.
fn read_fields(schema: &Schema, obj: &Map<String, Value>, values: &mut [i32; MAX_FIELDS]) -> Result<u32, DeltaError> {
    let mut mask = 0;
    for (name, v) in obj {
        if name == "id" || name == "kind" {
            continue;
        }
        let f = schema.field_index(name).ok_or_else(|| DeltaError::UnknownField(name.clone()))?;
        values[f] = read_value(name, schema.fields[f].ty, v)?;
        mask |= 1 << f;
    }
    Ok(mask)
}

/// Parses the JSON object text of a state into a plain [`Delta`].
///
/// # Errors
/// [`DeltaError::Json`] for text that is not the state object; otherwise an
/// unknown field or kind, a bad value, a spawned entity lacking fields.
pub fn read(schema: &Schema, bytes: &[u8]) -> Result<Delta, DeltaError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| DeltaError::Json(e.to_string()))?;
    if raw.spawned.len() + raw.updated.len() + raw.removed.len() > MAX_ENTITIES {
        return Err(DeltaError::TooManyEntities { max: MAX_ENTITIES });
    }
    let all = super::all_fields(schema);
    let mut delta = Delta { removed: raw.removed.into_iter().map(EntityId).collect(), ..Delta::default() };
    for obj in &raw.spawned {
        let id = read_id(obj)?;
        let kind =
            obj.get("kind").and_then(Value::as_str).ok_or_else(|| DeltaError::BadValue { field: "kind".into() })?;
        let kind = schema.kind_index(kind).ok_or(DeltaError::UnknownKind(u32::MAX))?;
        let mut e = Entity::new(id, kind);
        if read_fields(schema, obj, &mut e.values)? != all {
            return Err(DeltaError::MissingFields(id));
        }
        check_entity(schema, &e)?;
        delta.spawned.push(e);
    }
    for obj in &raw.updated {
        let id = read_id(obj)?;
        let mut values = [0; MAX_FIELDS];
        let mask = read_fields(schema, obj, &mut values)?;
        delta.updated.push(EntityUpdate { id, mask, values });
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Tick;
    use crate::schema::FieldDef;
    use crate::snapshot::Snapshot;

    fn schema() -> Schema {
        let f = |name: &str, ty| FieldDef { name: name.into(), ty, integrates: None };
        Schema {
            kinds: vec!["player".into(), "npc".into()],
            fields: vec![f("x", FieldType::Fixed(16)), f("hp", FieldType::U8)],
        }
    }

    #[test]
    fn literal_text_round_trips() {
        let s = schema();
        let mut e = Entity::new(EntityId(4), 0);
        e.values[..2].copy_from_slice(&[168, 100]);
        let a = Snapshot { tick: Tick(1), entities: vec![e, Entity::new(EntityId(9), 1)] };
        let mut moved = e;
        moved.values[0] = 176;
        let b = Snapshot { tick: Tick(2), entities: vec![moved] };
        let full = super::super::diff(&s, None, &a);
        let mut out = Vec::new();
        write(&s, &full, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"spawned":[{"id":4,"kind":"player","x":10.5,"hp":100},{"id":9,"kind":"npc","x":0.0,"hp":0}],"updated":[],"removed":[]}"#
        );
        assert_eq!(read(&s, &out), Ok(full));
        let delta = super::super::diff(&s, Some(&a), &b);
        out.clear();
        write(&s, &delta, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"spawned":[],"updated":[{"id":4,"x":11.0}],"removed":[9]}"#);
        assert_eq!(read(&s, &out), Ok(delta));
    }

    #[test]
    fn bad_json_states_are_refused() {
        let s = schema();
        type Check = fn(&DeltaError) -> bool;
        let cases: [(&str, Check); 5] = [
            (r#"{"spawned":[{"id":1,"kind":"player","x":1.0}]}"#, |e| matches!(e, DeltaError::MissingFields(_))),
            (r#"{"updated":[{"id":1,"z":1}]}"#, |e| matches!(e, DeltaError::UnknownField(_))),
            (r#"{"updated":[{"id":1,"hp":300}]}"#, |e| matches!(e, DeltaError::BadValue { .. })),
            (r#"{"spawned":[{"id":1,"kind":"tank","x":1.0,"hp":1}]}"#, |e| matches!(e, DeltaError::UnknownKind(_))),
            (r#"{"spawned":5}"#, |e| matches!(e, DeltaError::Json(_))),
        ];
        for (text, ok) in cases {
            let err = read(&s, text.as_bytes()).unwrap_err();
            assert!(ok(&err), "{text}: {err:?}");
        }
    }
}
