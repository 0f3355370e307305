//! The ports: what the domain needs from outside, as traits it owns. Adapters (the
//! DynamoDB and embedded stores, the Pusher client, the system clock) implement them.

pub mod clock;
pub mod realtime;
pub mod store;

pub use clock::{Clock, FixedClock, SystemClock};
pub use realtime::{ChannelSigner, Realtime, RealtimeError};
pub use store::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InboxOffer, InsertUserError,
    JoinError, Joined, Joining, Keeping, KeptMessage, LastMessage, ListEntry, ListStore, Listed,
    Member, Membership, MessageStore, Offer, PublicEntry, RateWindow, Requester, RoomStore,
    RoomsOf, RotateError, Store, StoreError, UserRecord, UserStore,
};
