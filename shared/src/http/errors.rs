//! One mapping from every domain error to an HTTP status and a JSON error body.

use crate::domain::channels::AuthorizeError;
use crate::domain::history::HistoryError;
use crate::domain::inbox::ListRoomsError;
use crate::domain::messages::{MessageError, SendError};
use crate::domain::rooms::BlockError;
use crate::domain::rooms::ConnectError;
use crate::domain::sent::BadMessageId;
use crate::domain::users::CreateUserError;
use crate::domain::users::RotateIdError;
use crate::realtime::RealtimeError;
use crate::store::StoreError;

/// An error answer: status, stable snake_case code, and a sentence for people.
/// `detail` is for the log line of a 5xx only and never reaches the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u32>,
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    fn with_detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(format!("{detail:#}"));
        self
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(500, "internal_error", "Something went wrong on our side.").with_detail(detail)
    }

    /// An unknown room and a room the caller is not in answer alike.
    fn room_not_found() -> Self {
        Self::new(
            404,
            "room_not_found",
            "No such room, or you are not one of its members.",
        )
    }

    fn room_closed() -> Self {
        Self::new(
            410,
            "room_closed",
            "This room was blocked by one of its members and is closed for good.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::new(
                503,
                "storage_unavailable",
                "Storage is unavailable right now; try again shortly.",
            )
            .retry_after(1)
            .with_detail(e),
            StoreError::Other(_) => Self::internal(e),
        }
    }
}

impl From<RealtimeError> for ApiError {
    fn from(e: RealtimeError) -> Self {
        Self::new(
            502,
            "realtime_unavailable",
            "The message could not be delivered to the realtime service.",
        )
        .with_detail(e)
    }
}

impl From<CreateUserError> for ApiError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::IdSpaceExhausted(_) => Self::new(
                503,
                "id_space_exhausted",
                "No free public id could be found; try again later.",
            )
            .retry_after(60)
            .with_detail(e),
            CreateUserError::RateLimited { retry_after } => Self::new(
                429,
                "rate_limited",
                format!(
                    "Too many users were created from this address; try again in \
                     {retry_after} s."
                ),
            )
            .retry_after(retry_after),
            CreateUserError::Store(e) => e.into(),
            CreateUserError::Unexpected(e) => Self::internal(e),
        }
    }
}

impl ApiError {
    fn unknown_private_id() -> Self {
        Self::new(
            401,
            "unknown_private_id",
            "No user has this private id; create one with POST /users/create.",
        )
    }
}

impl From<ListRoomsError> for ApiError {
    fn from(e: ListRoomsError) -> Self {
        match e {
            ListRoomsError::UnknownPrivateId => Self::unknown_private_id(),
            ListRoomsError::Store(e) => e.into(),
        }
    }
}

impl From<RotateIdError> for ApiError {
    fn from(e: RotateIdError) -> Self {
        match e {
            RotateIdError::UnknownPrivateId => Self::unknown_private_id(),
            RotateIdError::IdSpaceExhausted(_) => Self::new(
                503,
                "id_space_exhausted",
                "No free public id could be found; try again later.",
            )
            .retry_after(60)
            .with_detail(e),
            RotateIdError::RateLimited { retry_after } => Self::new(
                429,
                "rate_limited",
                format!("Too many ids were taken from this address; try again in {retry_after} s."),
            )
            .retry_after(retry_after),
            RotateIdError::Store(e) => e.into(),
            RotateIdError::Unexpected(e) => Self::internal(e),
        }
    }
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::CannotConnectToSelf => Self::bad_request(
                "cannot_connect_to_self",
                "That is your own public id; ask your peer for theirs.",
            ),
            ConnectError::UnknownPrivateId => Self::unknown_private_id(),
            ConnectError::TooManyRooms => Self::new(
                403,
                "too_many_rooms",
                format!(
                    "This identity is in {} rooms, the most one may join; \
                     create another with POST /users/create.",
                    crate::domain::rooms::MAX_ROOMS
                ),
            ),
            ConnectError::RoomClosed => Self::room_closed(),
            ConnectError::RateLimited { retry_after } => Self::new(
                429,
                "rate_limited",
                format!("You are connecting too often; try again in {retry_after} s."),
            )
            .retry_after(retry_after),
            ConnectError::Store(e) => e.into(),
        }
    }
}

impl From<BadMessageId> for ApiError {
    fn from(e: BadMessageId) -> Self {
        Self::bad_request("invalid_message_id", format!("Invalid message id: {e}."))
    }
}

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::Empty => Self::bad_request("empty_message", "The message is empty."),
            MessageError::TooLong(_) | MessageError::TooLongEscaped(_) => {
                Self::new(413, "message_too_long", e.to_string())
            }
        }
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::RoomNotFound => Self::room_not_found(),
            SendError::RoomClosed => Self::room_closed(),
            SendError::RateLimited { retry_after } => Self::new(
                429,
                "rate_limited",
                format!("You are sending messages too fast; try again in {retry_after} s."),
            )
            .retry_after(retry_after),
            SendError::IdConflict => Self::new(
                409,
                "id_conflict",
                "Your last message has this id and another text or room; send a new message under a new id.",
            ),
            SendError::Realtime(e) => e.into(),
            SendError::Store(e) => e.into(),
            SendError::Unexpected(e) => Self::internal(e),
        }
    }
}

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::NotAMember => {
                Self::new(403, "not_a_member", "You are not a member of this room.")
            }
            AuthorizeError::RoomClosed => Self::new(
                403,
                "room_closed",
                "This room was blocked by one of its members; it takes no new subscriptions.",
            ),
            AuthorizeError::Store(e) => e.into(),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::RoomNotFound => Self::room_not_found(),
            HistoryError::Store(e) => e.into(),
        }
    }
}

impl From<BlockError> for ApiError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::RoomNotFound => Self::room_not_found(),
            BlockError::Store(e) => e.into(),
        }
    }
}
