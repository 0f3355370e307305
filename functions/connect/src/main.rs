//! `POST /users/{publicId}/connect` on AWS Lambda. All logic lives in the `secret-rooms` library.

use secret_rooms::http::{Route, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::main(Route::Connect).await
}
