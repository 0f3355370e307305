//! The room lists' projection on AWS Lambda, fed by the table's DynamoDB stream (not a
//! route). All logic lives in the `secret-rooms` library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    secret_rooms::lambda::stream::main().await
}
