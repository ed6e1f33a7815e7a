//! Snapshots (a room's quantized entities at one tick) and the ring of
//! recent snapshots the server keeps as baselines.

use crate::ids::{EntityId, Tick};
use crate::schema::MAX_FIELDS;
use std::collections::VecDeque;

/// One entity's state: its id, kind and quantized field values.
///
/// Values past the schema's field count are always 0, so two entities of one
/// schema compare equal exactly when their fields do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entity {
    /// Unique within the room.
    pub id: EntityId,
    /// Index into the schema's kinds.
    pub kind: u8,
    /// Quantized field values, in schema order.
    pub values: [i32; MAX_FIELDS],
}

impl Entity {
    /// An entity with all fields 0.
    #[must_use]
    pub fn new(id: EntityId, kind: u8) -> Self {
        Self { id, kind, values: [0; MAX_FIELDS] }
    }
}

/// A room's state at one tick: entities sorted by id, ids unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The tick this state belongs to.
    pub tick: Tick,
    /// The entities, sorted by ascending id.
    pub entities: Vec<Entity>,
}

impl Snapshot {
    /// An empty snapshot at `tick`.
    #[must_use]
    pub fn new(tick: Tick) -> Self {
        Self { tick, entities: Vec::new() }
    }

    /// The entity with this id.
    #[must_use]
    pub fn get(&self, id: EntityId) -> Option<&Entity> {
        self.entities.binary_search_by_key(&id, |e| e.id).ok().map(|i| &self.entities[i])
    }

    /// Whether the entities are sorted by strictly ascending id, as every
    /// function of this crate requires.
    #[must_use]
    pub fn is_well_formed(&self) -> bool {
        self.entities.windows(2).all(|w| w[0].id < w[1].id)
    }

    /// Sorts the entities by id (for callers that built them unordered).
    pub fn sort(&mut self) {
        self.entities.sort_unstable_by_key(|e| e.id);
    }
}

/// The last `capacity` snapshots of a room, oldest first: the baselines a
/// delta may be taken against.
#[derive(Debug)]
pub struct SnapshotRing {
    capacity: usize,
    snapshots: VecDeque<Snapshot>,
}

impl SnapshotRing {
    /// A ring keeping `capacity` snapshots (at least 2: now and one baseline).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        Self { capacity, snapshots: VecDeque::with_capacity(capacity) }
    }

    /// The default capacity for a tick rate: one second of ticks plus two,
    /// so a client whose ack is up to a second old still gets a delta.
    #[must_use]
    pub fn capacity_for(tick_hz: u32) -> usize {
        tick_hz as usize + 2
    }

    /// How many snapshots it keeps at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds the newest snapshot; returns the evicted oldest one when full, so
    /// the caller can reuse its allocation.
    ///
    /// Ticks must increase: a snapshot not newer than the latest is refused
    /// and handed back.
    pub fn push(&mut self, snapshot: Snapshot) -> Option<Snapshot> {
        if self.latest().is_some_and(|l| l.tick >= snapshot.tick) {
            return Some(snapshot);
        }
        let evicted = if self.snapshots.len() == self.capacity { self.snapshots.pop_front() } else { None };
        self.snapshots.push_back(snapshot);
        evicted
    }

    /// Drops the snapshots older than `tick` (never the newest): they can no
    /// longer be a baseline. Returns one of them, so the caller can reuse
    /// its allocation.
    pub fn prune_before(&mut self, tick: Tick) -> Option<Snapshot> {
        let mut spare = None;
        while self.snapshots.len() > 1 && self.snapshots.front().is_some_and(|s| s.tick < tick) {
            spare = self.snapshots.pop_front();
        }
        spare
    }

    /// The newest snapshot.
    #[must_use]
    pub fn latest(&self) -> Option<&Snapshot> {
        self.snapshots.back()
    }

    /// The snapshot of `tick`, if still kept.
    #[must_use]
    pub fn get(&self, tick: Tick) -> Option<&Snapshot> {
        let first = self.snapshots.front()?.tick;
        // Ticks are consecutive in the common case: index directly, then
        // fall back to a search for rings with gaps.
        let guess = usize::try_from(tick.0.checked_sub(first.0)?).ok()?;
        match self.snapshots.get(guess) {
            Some(s) if s.tick == tick => Some(s),
            _ => self.snapshots.binary_search_by_key(&tick, |s| s.tick).ok().map(|i| &self.snapshots[i]),
        }
    }

    /// How many snapshots it holds now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_capacity_ticks() {
        let mut ring = SnapshotRing::new(3);
        for t in 1..=5 {
            let evicted = ring.push(Snapshot::new(Tick(t)));
            assert_eq!(evicted.map(|s| s.tick), (t > 3).then(|| Tick(t - 3)));
        }
        assert!(ring.get(Tick(2)).is_none());
        assert_eq!(ring.get(Tick(3)).map(|s| s.tick), Some(Tick(3)));
        assert_eq!(ring.get(Tick(5)).map(|s| s.tick), Some(Tick(5)));
        assert!(ring.get(Tick(6)).is_none());
        // Not newer than the latest: handed back, ring unchanged.
        assert_eq!(ring.push(Snapshot::new(Tick(5))).map(|s| s.tick), Some(Tick(5)));
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn pruning_keeps_the_newest_and_what_is_at_or_after_the_tick() {
        let mut ring = SnapshotRing::new(8);
        for t in 1..=5 {
            ring.push(Snapshot::new(Tick(t)));
        }
        assert_eq!(ring.prune_before(Tick(3)).map(|s| s.tick), Some(Tick(2)));
        assert_eq!(ring.len(), 3);
        assert!(ring.get(Tick(2)).is_none());
        assert!(ring.get(Tick(3)).is_some());
        assert!(ring.prune_before(Tick(3)).is_none());
        ring.prune_before(Tick(99));
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.latest().map(|s| s.tick), Some(Tick(5)));
    }

    #[test]
    fn ring_finds_ticks_across_gaps() {
        let mut ring = SnapshotRing::new(4);
        for t in [1, 3, 4, 9] {
            ring.push(Snapshot::new(Tick(t)));
        }
        assert_eq!(ring.get(Tick(9)).map(|s| s.tick), Some(Tick(9)));
        assert_eq!(ring.get(Tick(3)).map(|s| s.tick), Some(Tick(3)));
        assert!(ring.get(Tick(2)).is_none());
    }
}
