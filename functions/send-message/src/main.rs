//! `POST /rooms/{roomId}/message` on AWS Lambda. All logic lives in the `secret-rooms` library.

use secret_rooms::http::routes;
use secret_rooms::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::http::main(routes::SendMessage::from_env).await
}
