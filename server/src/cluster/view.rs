//! The cluster as this node last read it: live nodes and their rooms, and
//! the questions the request path asks of it. Immutable: the writer thread
//! builds a new one per refresh and swaps it in; shards read the current
//! one through an `Arc` without waiting on anything.

use super::records::{JsonMap, NodeRecord, RoomRecord};
use std::collections::HashMap;
use std::time::Instant;
use tickforge_protocol::ids::RoomId;

/// One live node and its rooms.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    /// Its heartbeat.
    pub record: NodeRecord,
    /// Its rooms (public and private).
    pub rooms: Vec<RoomRecord>,
}

/// A room and the node that hosts it.
#[derive(Clone, Copy, Debug)]
pub struct RoomRef<'a> {
    /// The hosting node.
    pub node: &'a NodeRecord,
    /// The room's row.
    pub room: &'a RoomRecord,
}

/// The cluster as last read: every live node (this one included, with its
/// rooms as published locally) and its rooms.
#[derive(Clone, Debug)]
pub struct ClusterView {
    self_id: String,
    nodes: Vec<NodeEntry>,
    index: HashMap<RoomId, (usize, usize)>,
    read_at: Option<Instant>,
}

impl ClusterView {
    /// A view of `nodes` as read at `read_at` (`None`: never read from
    /// Redis: this node alone). The first of two rooms with one id wins.
    #[must_use]
    pub fn new(self_id: &str, mut nodes: Vec<NodeEntry>, read_at: Option<Instant>) -> Self {
        nodes.sort_by(|a, b| a.record.node_id.cmp(&b.record.node_id));
        let mut index = HashMap::new();
        for (n, node) in nodes.iter().enumerate() {
            for (r, room) in node.rooms.iter().enumerate() {
                index.entry(room.room_id.clone()).or_insert((n, r));
            }
        }
        Self { self_id: self_id.to_owned(), nodes, index, read_at }
    }

    /// This node's id.
    #[must_use]
    pub fn self_id(&self) -> &str {
        &self.self_id
    }

    /// When Redis last answered a refresh (`None`: never).
    #[must_use]
    pub fn read_at(&self) -> Option<Instant> {
        self.read_at
    }

    /// Every live node, by id.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().map(|n| &n.record)
    }

    /// A live node by id.
    #[must_use]
    pub fn node(&self, id: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.record.node_id == id).map(|n| &n.record)
    }

    fn all_rooms(&self) -> impl Iterator<Item = RoomRef<'_>> {
        self.nodes.iter().flat_map(|n| n.rooms.iter().map(move |room| RoomRef { node: &n.record, room }))
    }

    /// A room by id on any live node, private ones included (`join_room`).
    #[must_use]
    pub fn room(&self, id: &RoomId) -> Option<RoomRef<'_>> {
        let &(n, r) = self.index.get(id)?;
        let node = &self.nodes[n];
        Some(RoomRef { node: &node.record, room: &node.rooms[r] })
    }

    /// The public rooms of every live node, of `game` when given, whose
    /// metadata matches `filter` when given, sorted by room id
    /// (`list_rooms`, `/rooms`).
    #[must_use]
    pub fn list(&self, game: Option<&str>, filter: Option<&JsonMap>) -> Vec<RoomRef<'_>> {
        let mut rooms: Vec<_> = self
            .all_rooms()
            .filter(|r| !r.room.private)
            .filter(|r| game.is_none_or(|g| r.room.game == g))
            .filter(|r| filter.is_none_or(|f| r.room.matches(f)))
            .collect();
        rooms.sort_by(|a, b| a.room.room_id.cmp(&b.room.room_id));
        rooms
    }

    /// The fullest public room of `game` with a free seat (reserved seats
    /// count as taken) on a node that is not draining, created with options
    /// equal to `options` (none is `{}`) (`join_or_create`). A tie goes to
    /// this node (no redirect), then to the smallest room id.
    #[must_use]
    pub fn fullest_open(&self, game: &str, options: Option<&JsonMap>) -> Option<RoomRef<'_>> {
        let empty = JsonMap::new();
        let options = options.unwrap_or(&empty);
        self.all_rooms()
            .filter(|r| !r.node.draining && !r.room.private && r.room.game == game)
            .filter(|r| r.room.free_seats() > 0 && r.room.options == *options)
            .min_by(|a, b| {
                let taken = |r: &RoomRef<'_>| r.room.players + r.room.reserved;
                taken(b)
                    .cmp(&taken(a))
                    .then_with(|| (b.node.node_id == self.self_id).cmp(&(a.node.node_id == self.self_id)))
                    .then_with(|| a.room.room_id.cmp(&b.room.room_id))
            })
    }

    /// The node with the most headroom relative to its capacity that is not
    /// draining nor full, where a new room should go. A tie goes to this
    /// node, then to the smallest id.
    #[must_use]
    pub fn least_loaded(&self) -> Option<&NodeRecord> {
        self.nodes().filter(|n| !n.draining && n.headroom() > 0).min_by(|a, b| {
            // players/capacity compared without division: a.p * b.c vs b.p * a.c.
            let load = |n: &NodeRecord, other: &NodeRecord| u64::from(n.players) * u64::from(other.capacity);
            load(a, b)
                .cmp(&load(b, a))
                .then_with(|| (b.node_id == self.self_id).cmp(&(a.node_id == self.self_id)))
                .then_with(|| a.node_id.cmp(&b.node_id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(id: &str, players: u32, capacity: u32) -> NodeRecord {
        NodeRecord {
            node_id: id.into(),
            url: format!("ws://{id}/ws"),
            players,
            capacity,
            rooms: 0,
            draining: false,
            epoch: 1,
            rooms_rev: 1,
            version: "test".into(),
        }
    }

    fn room(id: &str, game: &str, players: u32, max: u32) -> RoomRecord {
        let mut r = RoomRecord::new(RoomId(id.into()), game, max, 30);
        r.players = players;
        r
    }

    fn view() -> ClusterView {
        let mut private = room("b-3", "arena", 1, 8);
        private.private = true;
        let mut tagged = room("c-1", "arena", 2, 8);
        tagged.metadata.insert("map".into(), json!("dust"));
        tagged.options.insert("mode".into(), json!("duel"));
        ClusterView::new(
            "a",
            vec![
                NodeEntry { record: node("c", 10, 100), rooms: vec![tagged] },
                NodeEntry {
                    record: node("a", 5, 100),
                    rooms: vec![room("a-1", "arena", 3, 8), room("a-2", "chess", 1, 2)],
                },
                NodeEntry {
                    record: node("b", 50, 100),
                    rooms: vec![room("b-1", "arena", 3, 8), room("b-2", "arena", 8, 8), private],
                },
            ],
            Some(Instant::now()),
        )
    }

    #[test]
    fn lists_public_rooms_of_every_node_by_game_and_filter() {
        let v = view();
        let ids = |rooms: Vec<RoomRef<'_>>| rooms.iter().map(|r| r.room.room_id.0.clone()).collect::<Vec<_>>();
        assert_eq!(ids(v.list(None, None)), ["a-1", "a-2", "b-1", "b-2", "c-1"]);
        assert_eq!(ids(v.list(Some("chess"), None)), ["a-2"]);
        let filter = json!({"map": "dust"}).as_object().unwrap().clone();
        assert_eq!(ids(v.list(Some("arena"), Some(&filter))), ["c-1"]);
        assert_eq!(v.room(&RoomId("b-3".into())).unwrap().node.node_id, "b", "private rooms are found by id");
        assert!(v.room(&RoomId("zz".into())).is_none());
    }

    #[test]
    fn the_fullest_open_room_prefers_this_node_on_a_tie_and_matches_options() {
        let v = view();
        let best = v.fullest_open("arena", None).unwrap();
        assert_eq!((best.node.node_id.as_str(), best.room.room_id.0.as_str()), ("a", "a-1"));
        let duel = json!({"mode": "duel"}).as_object().unwrap().clone();
        assert_eq!(v.fullest_open("arena", Some(&duel)).unwrap().room.room_id.0, "c-1");
        assert!(v.fullest_open("go", None).is_none());
        // Reserved seats count as taken.
        let mut full = room("d-1", "chess", 1, 2);
        full.reserved = 1;
        let v = ClusterView::new("a", vec![NodeEntry { record: node("d", 1, 10), rooms: vec![full] }], None);
        assert!(v.fullest_open("chess", None).is_none());
    }

    #[test]
    fn the_least_loaded_node_by_share_of_capacity() {
        let v = view();
        assert_eq!(v.least_loaded().unwrap().node_id, "a");
        let mut big = node("z", 60, 1000);
        big.draining = false;
        let mut gone = node("y", 0, 100);
        gone.draining = true;
        let v = ClusterView::new(
            "a",
            vec![
                NodeEntry { record: node("a", 50, 100), rooms: vec![] },
                NodeEntry { record: big, rooms: vec![] },
                NodeEntry { record: gone, rooms: vec![] },
                NodeEntry { record: node("x", 10, 10), rooms: vec![] },
            ],
            None,
        );
        assert_eq!(v.least_loaded().unwrap().node_id, "z", "6% beats 50%; draining and full nodes are skipped");
    }
}
