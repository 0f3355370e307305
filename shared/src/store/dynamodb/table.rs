//! The table itself: creating it as the SAM template does (local development, tests),
//! and reading its items whole, for reprojecting the room lists.

use super::*;

impl DynamoStore {
    /// Every item of the table the room lists derive from (`keys::found`): a pass over
    /// the whole table, a `Scan` per page of keys.
    pub async fn found_items(&self) -> Result<Vec<Derived>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .projection_expression("#pk, #sk, #to")
                .filter_expression("begins_with(#sk, :room) OR begins_with(#sk, :offer)")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_names("#to", attr::TO)
                .expression_attribute_values(":room", s(keys::ROOM_ENTRY_PREFIX))
                .expression_attribute_values(":offer", s(keys::OFFER_ENTRY_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Scan", e))?;
            for item in out.items() {
                let to = item.get(attr::TO).and_then(|v| v.as_s().ok());
                found.extend(keys::found(
                    &text_of(item, attr::PK)?,
                    &text_of(item, attr::SK)?,
                    to.map(String::as_str),
                ));
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(found),
            }
        }
    }

    /// Create the table (on-demand, keys `pk` and `sk`, a stream of new and old images
    /// for the room lists' projection) as the SAM template does; for local development
    /// and tests.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.create_table_with(true).await
    }

    /// [`Self::create_table`], without the stream when `stream` is false: for benchmarks
    /// that do not measure the projection (moto keeps a stream's records in memory, and
    /// slows down as they pile up).
    pub async fn create_table_with(&self, stream: bool) -> Result<(), StoreError> {
        let mut request = self.client.create_table().table_name(&self.table);
        for (name, key_type) in [(attr::PK, KeyType::Hash), (attr::SK, KeyType::Range)] {
            let attribute = AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)?;
            let key = KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)?;
            request = request.attribute_definitions(attribute).key_schema(key);
        }
        if stream {
            let stream = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build_error)?;
            request = request.stream_specification(stream);
        }
        request
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| classify("CreateTable", e))?;
        // As template.yaml: per-address counts go once their window has passed, kept
        // messages once their MESSAGE_TTL has.
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attr::TTL)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| classify("UpdateTimeToLive", e))?;
        Ok(())
    }
}
