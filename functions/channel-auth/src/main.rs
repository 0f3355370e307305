//! `POST /pusher/auth` on AWS Lambda. All logic lives in the `secret-rooms` library.

use secret_rooms::http::routes;
use secret_rooms::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::http::main(routes::ChannelAuth::from_env).await
}
