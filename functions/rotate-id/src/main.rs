//! `POST /users/rotate` on AWS Lambda. All logic lives in the `secret-rooms` library.

use secret_rooms::http::{lambda, routes};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::main(routes::RotateId::from_env).await
}
