//! `POST /users/rooms` on AWS Lambda. All logic lives in the `secret-rooms` library.

use secret_rooms::http::{lambda, routes};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::main(routes::ListRooms::from_env).await
}
