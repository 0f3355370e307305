//! DynamoDB's errors as the store's: worth retrying later, or not.

use crate::store::StoreError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

/// `Ok` for a write whose condition failed (a write not wanted after all), the store's
/// error for any other failure.
pub(super) fn unless_condition_failed<T, E>(
    operation: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(classify(operation, e)),
    }
}

/// Error codes after which a retry later may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

pub(super) fn classify<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || err.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    let error = anyhow::anyhow!("DynamoDB {operation}: {}", DisplayErrorContext(&err));
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error)
    }
}

/// Why each item of a cancelled transaction failed; none for any other error.
fn cancellation_reasons(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> &[CancellationReason] {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            cancel.cancellation_reasons()
        }
        _ => &[],
    }
}

/// Whether a cancelled transaction failed on `reason` (the write as a whole did not happen).
pub(super) fn cancelled_for(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
    reason: &str,
) -> bool {
    cancellation_reasons(err)
        .iter()
        .any(|r| r.code() == Some(reason))
}

/// Whether the condition of the transaction's item at `index` failed.
pub(super) fn condition_failed_at(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
    index: usize,
) -> bool {
    cancellation_reasons(err)
        .get(index)
        .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
}

/// The old item of the transaction's write at `index` whose condition failed, `None`
/// when that item does not exist (the cancellation reasons carry the old item of a
/// failed condition asked with `ALL_OLD`).
pub(super) fn failed_item(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
    index: usize,
) -> Option<super::codec::Item> {
    cancellation_reasons(err)
        .get(index)
        .filter(|r| r.code() == Some("ConditionalCheckFailed"))
        .and_then(|r| r.item())
        .filter(|item| !item.is_empty())
        .cloned()
}

/// A transaction another one held an item of: nothing was written, try again later.
pub(super) fn conflict(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!(
        "DynamoDB TransactWriteItems: {}",
        DisplayErrorContext(err)
    ))
}

pub(super) fn build_error(e: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(e.into())
}
