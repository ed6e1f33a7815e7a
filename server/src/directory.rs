//! The cross-shard room directory: room id -> shard, and each room's row
//! for `list_rooms` and `GET /rooms` (its metadata included), with the
//! options it was created with for `join_or_create`.
//!
//! Control plane only: it is written when a room is created, disposed of,
//! or its player count or metadata changes (checked once per tick, written
//! only on a change), and read by `list_rooms`, `join_room` and
//! `join_or_create`. No input touches it, so a plain mutex held for a few
//! map operations is enough.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::RoomInfo;
use tickforge_protocol::value::ValueMap;

/// One room's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The shard hosting it.
    pub shard: usize,
    /// Its row (players as last published).
    pub info: RoomInfo,
    /// Private rooms are not listed.
    pub private: bool,
    /// The options it was created with.
    pub options: ValueMap,
}

/// Every room of the process.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    rooms: Arc<Mutex<HashMap<RoomId, Entry>>>,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removes), so a poisoned lock is still usable.
        self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a new room on `shard`, made with `options`.
    pub fn insert(&self, shard: usize, info: RoomInfo, private: bool, options: ValueMap) {
        self.lock().insert(info.room_id.clone(), Entry { shard, info, private, options });
    }

    /// Updates a room's player and spectator counts, and its metadata when
    /// given.
    pub fn update(&self, room: &RoomId, players: u32, spectators: u32, metadata: Option<ValueMap>) {
        if let Some(e) = self.lock().get_mut(room) {
            e.info.players = players;
            e.info.spectators = spectators;
            if let Some(metadata) = metadata {
                e.info.metadata = metadata;
            }
        }
    }

    /// Forgets a room.
    pub fn remove(&self, room: &RoomId) {
        self.lock().remove(room);
    }

    /// A room's entry.
    #[must_use]
    pub fn get(&self, room: &RoomId) -> Option<Entry> {
        self.lock().get(room).cloned()
    }

    /// The public rooms (optionally of one game, and whose metadata
    /// matches `filter`: [`ValueMap::matches`]), sorted by id.
    #[must_use]
    pub fn list(&self, game: Option<&str>, filter: Option<&ValueMap>) -> Vec<RoomInfo> {
        let mut rooms: Vec<_> = self
            .lock()
            .values()
            .filter(|e| !e.private && game.is_none_or(|g| e.info.game == g))
            .filter(|e| filter.is_none_or(|f| e.info.metadata.matches(f)))
            .map(|e| e.info.clone())
            .collect();
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        rooms
    }

    /// The fullest public room of `game` made with `options`, with a free
    /// seat, on any shard other than `except` (as last published):
    /// `(shard, room, players)`.
    #[must_use]
    pub fn fullest_open_elsewhere(
        &self,
        game: &str,
        options: &ValueMap,
        except: usize,
    ) -> Option<(usize, RoomId, u32)> {
        self.lock()
            .values()
            .filter(|e| e.shard != except && !e.private && e.info.game == game && e.info.players < e.info.max_players)
            .filter(|e| e.options == *options)
            .max_by_key(|e| e.info.players)
            .map(|e| (e.shard, e.info.room_id.clone(), e.info.players))
    }

    /// Rooms per shard count, for logs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no rooms.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, game: &str, players: u32) -> RoomInfo {
        RoomInfo {
            room_id: RoomId(id.into()),
            game: game.into(),
            players,
            max_players: 4,
            tick_hz: 30,
            spectators: 0,
            metadata: Default::default(),
        }
    }

    #[test]
    fn lists_public_rooms_and_finds_the_fullest_elsewhere() {
        let d = Directory::default();
        let none = ValueMap::new();
        d.insert(0, info("r-0-1", "arena", 1), false, none.clone());
        d.insert(1, info("r-1-1", "arena", 2), false, none.clone());
        d.insert(1, info("r-1-2", "arena", 3), true, none.clone());
        d.insert(1, info("r-1-3", "chess", 1), false, none.clone());
        assert_eq!(d.list(Some("arena"), None).len(), 2);
        assert_eq!(d.list(None, None).len(), 3);
        assert_eq!(d.fullest_open_elsewhere("arena", &none, 0), Some((1, RoomId("r-1-1".into()), 2)));
        d.update(&RoomId("r-1-1".into()), 4, 0, None);
        assert_eq!(d.fullest_open_elsewhere("arena", &none, 0), None);
        d.remove(&RoomId("r-0-1".into()));
        assert_eq!(d.list(Some("arena"), None).len(), 1);
    }

    #[test]
    fn metadata_filters_the_list_and_options_the_match() {
        let d = Directory::default();
        let duel: ValueMap = [("mode", "duel")].into_iter().collect();
        d.insert(1, info("r-1-1", "chess", 1), false, duel.clone());
        d.insert(1, info("r-1-2", "chess", 1), false, ValueMap::new());
        d.update(&RoomId("r-1-1".into()), 1, 0, Some([("phase", "waiting")].into_iter().collect()));
        let waiting: ValueMap = [("phase", "waiting")].into_iter().collect();
        let rows = d.list(None, Some(&waiting));
        assert_eq!(rows.iter().map(|r| r.room_id.0.as_str()).collect::<Vec<_>>(), ["r-1-1"]);
        assert_eq!(d.list(None, Some(&[("phase", "over")].into_iter().collect())).len(), 0);
        assert_eq!(d.list(None, Some(&ValueMap::new())).len(), 2);
        assert_eq!(d.fullest_open_elsewhere("chess", &duel, 0).map(|r| r.1 .0), Some("r-1-1".to_owned()));
        assert_eq!(d.fullest_open_elsewhere("chess", &ValueMap::new(), 0).map(|r| r.1 .0), Some("r-1-2".to_owned()));
    }
}
