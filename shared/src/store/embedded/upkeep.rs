//! The embedded store's upkeep: reprojecting a file, sweeping what expired, dumping
//! every item for `verify`.

use super::*;

impl EmbeddedStore {
    /// Project the whole file again, as if every offer and every joined room had just
    /// been written, and drop the copies of offers that are gone or were made to an id
    /// the partition's user no longer holds (`projection::reproject`): for a file from
    /// before the projection. Idempotent; the local server runs it at start-up. How many
    /// items it went through.
    pub async fn reproject(&self) -> Result<usize, StoreError> {
        let quiet = self.uncounted();
        quiet.settle().await?;
        let found = quiet
            .run(|db| {
                let txn = db.begin_read().map_err(other)?;
                let table = txn.open_table(ITEMS).map_err(other)?;
                let mut found = Vec::new();
                for entry in table.iter().map_err(other)? {
                    let (key, value) = entry.map_err(other)?;
                    let Some((pk, sk)) = key.value().split_once(' ') else {
                        continue;
                    };
                    let to = if sk.starts_with(keys::OFFER_ENTRY_PREFIX) {
                        let copy: InboxItem =
                            serde_json::from_slice(value.value()).map_err(other)?;
                        Some(copy.to)
                    } else {
                        None
                    };
                    found.extend(keys::found(pk, sk, to.as_deref()));
                }
                Ok(found)
            })
            .await?;
        for item in &found {
            projection::reproject(&quiet, item).await?;
        }
        Ok(found.len())
    }

    /// Delete what has expired by `now_secs` (seconds since the epoch): kept messages
    /// past their `ttl`, per-address create counts past their window, and offers (with
    /// the projection's copies, in every partition alike) past their `OFFER_TTL`. On AWS,
    /// DynamoDB's TTL does this; here the local server sweeps at start-up and every few
    /// minutes, so that the file does not grow with time alone. Read first, then deleted
    /// in transactions of at most [`Self::SWEEP_BATCH`] items, so that the writer is
    /// never held long. What it removed.
    pub async fn sweep(&self, now_secs: u64) -> Result<Swept, StoreError> {
        #[derive(Deserialize)]
        struct Expiring {
            ttl: Option<u64>,
        }
        let quiet = self.uncounted();
        let expired = quiet
            .run(move |db| {
                let txn = db.begin_read().map_err(other)?;
                let table = txn.open_table(ITEMS).map_err(other)?;
                let mut expired = Vec::new();
                for entry in table.iter().map_err(other)? {
                    let (key, value) = entry.map_err(other)?;
                    let key = key.value();
                    let kind = match key.split_once(' ') {
                        Some((_, sk)) if sk.starts_with(keys::MESSAGE_PREFIX) => Expires::Message,
                        Some((pk, sk))
                            if pk.starts_with(keys::PUBLIC_PREFIX)
                                && sk.starts_with(keys::ROOM_ENTRY_PREFIX) =>
                        {
                            Expires::Offer
                        }
                        Some((_, sk)) if sk.starts_with(keys::OFFER_ENTRY_PREFIX) => Expires::Offer,
                        None if key.starts_with(keys::ADDRESS_PREFIX) => Expires::Address,
                        _ => continue,
                    };
                    let item: Expiring = serde_json::from_slice(value.value()).map_err(other)?;
                    if item.ttl.is_some_and(|ttl| ttl <= now_secs) {
                        expired.push((key.to_owned(), kind));
                    }
                }
                Ok(expired)
            })
            .await?;
        let mut swept = Swept::default();
        for batch in expired.chunks(Self::SWEEP_BATCH) {
            let batch = batch.to_vec();
            let removed = quiet
                .write(move |db| {
                    let txn = db.begin_write().map_err(other)?;
                    let mut removed = Swept::default();
                    {
                        let mut table = Writes::open(&txn)?;
                        for (key, kind) in &batch {
                            // Only what is still there and still expired (an offer made
                            // again since has a later ttl).
                            let still = get_item::<Expiring>(&*table, key)?
                                .is_some_and(|item| item.ttl.is_some_and(|t| t <= now_secs));
                            if still {
                                table.remove(key.as_str())?;
                                match kind {
                                    Expires::Message => removed.messages += 1,
                                    Expires::Address => removed.addresses += 1,
                                    Expires::Offer => removed.offers += 1,
                                }
                            }
                        }
                    }
                    txn.commit().map_err(other)?;
                    Ok(removed)
                })
                .await?;
            swept.messages += removed.messages;
            swept.addresses += removed.addresses;
            swept.offers += removed.offers;
        }
        // An offer's deletion feeds the projection, as DynamoDB's TTL deletions feed
        // the stream: its copy goes too (if the sweep has not removed it already).
        if swept.offers > 0 {
            self.kick();
        }
        Ok(swept)
    }

    /// Items a sweep deletes per transaction.
    pub const SWEEP_BATCH: usize = 1000;

    /// Every item as `(key, JSON)`, in key order (tests and operations; not on a route).
    pub async fn dump(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(other)? {
                let (key, value) = entry.map_err(other)?;
                let value = serde_json::from_slice(value.value()).map_err(other)?;
                out.push((key.value().to_owned(), value));
            }
            Ok(out)
        })
        .await
    }
}
