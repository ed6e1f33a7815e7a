//! The game-facing half of a [`Room`]: game messages in, game events out,
//! the metadata the directory publishes, and what a game panic does.

use super::Room;
use crate::game::host::Hook;
use crate::game::{Game, GameStats};
use std::sync::Arc;
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::ids::PlayerId;
use tickforge_protocol::message::{Indication, RejectCode, ServerMsg};
use tickforge_protocol::snapshot::Snapshot;
use tickforge_protocol::value::{Value, ValueMap};
use tracing::warn;

impl Room {
    /// The room's game.
    #[must_use]
    pub fn game(&self) -> &Arc<dyn Game> {
        &self.game
    }

    /// The options the room was created with.
    #[must_use]
    pub fn options(&self) -> &ValueMap {
        &self.options
    }

    /// The metadata the game set.
    #[must_use]
    pub fn metadata(&self) -> &ValueMap {
        self.host.metadata().0
    }

    /// The newest snapshot taken (the state the last tick sent).
    #[must_use]
    pub fn latest_snapshot(&self) -> Option<&Snapshot> {
        self.ring.latest()
    }

    /// Whether the game changed its metadata since the directory last took
    /// it ([`Room::metadata_update`]).
    #[must_use]
    pub fn metadata_changed(&self) -> bool {
        self.host.metadata().1 != self.metadata_published
    }

    /// The metadata, once after each change (for the directory).
    pub fn metadata_update(&mut self) -> Option<ValueMap> {
        let (metadata, version) = self.host.metadata();
        if version == self.metadata_published {
            return None;
        }
        self.metadata_published = version;
        Some(metadata.clone())
    }

    /// The game's counters since the last call (for the shard's metrics).
    pub fn take_game_stats(&mut self) -> GameStats {
        self.host.take_stats()
    }

    /// A player's `game_message`: the game's reply, checked like every
    /// value the game sends. The caller has checked the name and the data
    /// against the server's bounds.
    ///
    /// # Errors
    /// `not_in_room` for a player with no seat here; `unsupported` for a
    /// name the game does not know; `refused` with the game's reason;
    /// `internal` for a reply the game may not send, or a panic (the room
    /// closes).
    pub fn game_message(&mut self, player: PlayerId, name: &str, data: &Value) -> Result<Value, (RejectCode, String)> {
        if self.closed.is_some() || !self.has_player(player) {
            return Err((RejectCode::NotInRoom, format!("player {} is not in room {}", player.0, self.id)));
        }
        match self.host.message(self.tick, player, name, data) {
            Ok(Ok(reply)) => match self.host.limits().check_outgoing(&reply) {
                Ok(()) => Ok(reply),
                Err(e) => {
                    warn!(room = %self.id, message = name, error = %e, "game reply refused");
                    Err((
                        RejectCode::Internal,
                        format!("game {} replied to {name:?} with a bad value: {e}", self.game_name),
                    ))
                }
            },
            Ok(Err(crate::game::MessageError::Unknown)) => {
                Err((RejectCode::Unsupported, format!("game {} has no message {name:?}", self.game_name)))
            }
            Ok(Err(crate::game::MessageError::Refused(reason))) => Err((RejectCode::Refused, reason)),
            Err(panic) => {
                self.fail(Hook::Message, &panic);
                Err((RejectCode::Internal, format!("game {} failed on message {name:?}; room closed", self.game_name)))
            }
        }
    }

    /// The game panicked in `hook`: the room closes, saying so.
    pub(super) fn fail(&mut self, hook: Hook, panic: &str) {
        warn!(room = %self.id, hook = hook.name(), %panic, "game panicked; room closed");
        self.close(&format!("game error in {}: {panic}", hook.name()));
    }

    /// Delivers the events the game queued since the last delivery, each
    /// encoded once per wire form; returns the deliveries made. A player
    /// who left since an event was sent does not get it, nor does a held
    /// seat (no connection); spectators get none (they see the state).
    pub(super) fn deliver_events(&mut self) -> usize {
        if !self.host.has_events() {
            return 0;
        }
        let mut events = std::mem::take(&mut self.events);
        self.host.take_events(&mut events);
        let mut delivered = 0;
        let (mut bin, mut json) = (Vec::new(), Vec::new());
        for event in events.drain(..) {
            bin.clear();
            json.clear();
            let msg = ServerMsg::Ind { body: Indication::GameEvent { name: event.name, data: event.data } };
            for id in &event.to {
                // A held seat has no connection: what it misses while away is lost.
                let Some(p) = self.players.iter().find(|p| p.id == *id && p.held.is_none()) else { continue };
                let format = p.outbox.format();
                let bytes = match format {
                    Format::Bin => &mut bin,
                    Format::Json => &mut json,
                };
                if bytes.is_empty() {
                    codec::encode_server(format, &msg, bytes);
                }
                // A full control queue closes that connection: its own problem.
                if p.outbox.push_encoded(bytes).is_ok() {
                    delivered += 1;
                }
            }
        }
        self.events = events;
        delivered
    }
}
