//! The secret-rooms domain: what the service promises, with no knowledge of HTTP,
//! Lambda, AWS or Pusher.
//!
//! - [`ids`]: public, private and room ids, parsed at the edge and valid by construction.
//! - [`users`], [`rooms`], [`messages`], [`channels`], [`history`], [`inbox`]: the eight
//!   operations (create and rotate, connect and block, message, channel auth, history,
//!   room list).
//! - [`projection`]: what keeps the room lists one query.
//! - [`ports`]: what the operations need from outside (a store, a realtime publisher, a
//!   channel signer, a clock), implemented by adapters elsewhere.
//! - [`addresses`]: the per-source-address limit on creating users.
//! - [`time`] and [`random`]: timestamps as text, and the OS's CSPRNG.

pub mod addresses;
pub mod channels;
pub mod cursor;
pub mod history;
pub mod ids;
pub mod inbox;
pub mod messages;
pub mod ports;
pub mod projection;
pub mod random;
pub mod rooms;
pub mod sent;
pub mod time;
pub mod users;

pub use ids::{PrivateId, PrivateIdHash, PublicId, PublicKey, RoomId, SocketId};
