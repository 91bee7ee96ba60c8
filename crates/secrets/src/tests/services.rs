//! Service instances' secret parameters: a round trip (across a master-key rotation), and a
//! blob moved to another key, service or namespace fails to open.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::*;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
        .collect()
}

#[tokio::test]
async fn secret_parameters_round_trip_and_are_bound_to_their_place() {
    let env = env();
    let sealed = env
        .vault
        .seal_service_params(
            "demo",
            "db",
            &params(&[("password", "pw-1"), ("user", "u")]),
        )
        .await
        .unwrap();
    assert!(sealed
        .values()
        .all(|blob| !blob.windows(4).any(|w| w == b"pw-1")));
    let opened = env
        .vault
        .open_service_params("demo", "db", &sealed)
        .await
        .unwrap();
    assert_eq!(opened["password"].as_slice(), b"pw-1");
    assert_eq!(opened["user"].as_slice(), b"u");
    // A master-key rotation re-wraps the data key only: the parameters still open.
    env.vault
        .rotate_master_key(MasterKey::generate().unwrap())
        .await
        .unwrap();
    let opened = env
        .vault
        .open_service_params("demo", "db", &sealed)
        .await
        .unwrap();
    assert_eq!(opened["password"].as_slice(), b"pw-1");
    // Moved to another key of the same service.
    let swapped = BTreeMap::from([("user".to_string(), sealed["password"].clone())]);
    assert!(matches!(
        env.vault.open_service_params("demo", "db", &swapped).await,
        Err(VaultError::Undecryptable { .. })
    ));
    // To another service, or another namespace.
    assert!(matches!(
        env.vault
            .open_service_params("demo", "cache", &sealed)
            .await,
        Err(VaultError::Undecryptable { .. })
    ));
    env.vault
        .seal_service_params("other", "db", &params(&[("x", "y")]))
        .await
        .unwrap();
    assert!(matches!(
        env.vault.open_service_params("other", "db", &sealed).await,
        Err(VaultError::Undecryptable { .. })
    ));
    // A namespace that does not exist gets no data key.
    assert!(env
        .vault
        .seal_service_params("nowhere", "db", &params(&[("x", "y")]))
        .await
        .is_err());
}
