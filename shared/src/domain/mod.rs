//! The domain: what the service promises, with no knowledge of HTTP, Lambda or AWS.

pub mod channels;
pub mod ids;
pub mod messages;
pub mod rooms;
pub mod time;
pub mod users;

pub use ids::{PrivateId, PrivateIdHash, PublicId, RoomId};
