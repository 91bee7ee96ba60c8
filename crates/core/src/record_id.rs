//! Ids of the records made on the call path: runs (invocations) and flow instances.
//!
//! They are UUIDs version 7: a millisecond timestamp first, then 74 random bits. The store's
//! primary key index then grows at its end, as the records are made, and a batch of new
//! records touches one index page. With random (version 4) ids each new record went to a
//! page of its own anywhere in the index, and every such page was written again to the
//! write-ahead log and at its checkpoint: a profile under 8 clients put the record writer's
//! commits at a sixth of the server's CPU, most of it pages of that index. The random part is
//! still far beyond guessing, and the time in an id is the record's own `started`.

/// A new run id: 32 lowercase hex digits (the form every run id has).
pub fn run() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A new flow instance id: a hyphenated UUID, as Direktiv's instance ids are.
pub fn instance() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_later_sort_later_and_keep_their_forms() {
        let runs: Vec<String> = (0..200).map(|_| run()).collect();
        for id in &runs {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
        let later = {
            std::thread::sleep(std::time::Duration::from_millis(2));
            run()
        };
        assert!(
            runs.iter().all(|id| *id < later),
            "{later} sorts before an earlier id"
        );
        let instance = instance();
        let parsed = uuid::Uuid::parse_str(&instance).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(instance.len(), 36);
        assert_ne!(super::instance(), instance, "two ids alike");
    }
}
