//! Publishing changes to the store's changes feed, for the other servers' caches (what they
//! do with them is [`crate::follow`]). Apart from the follower so the write paths
//! (`deploy.rs` among them) publish without depending on what follows.

use faasbox_store::Store;

use crate::owner::{function_key, Owner};

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A token was made or deleted (key: empty): the token book is reloaded.
    Token,
    /// A function or global service was deployed, updated, rolled back or deleted (key:
    /// `owner/name`): its current revision is put into service, or it is taken out.
    Function,
    /// A namespace's routes changed (key: the namespace): the gateway's table is reloaded.
    Route,
    /// A namespace was deleted (key: its name): its functions leave service, and its tokens
    /// and routes with it.
    NamespaceDeleted,
    /// An image name of the cluster's catalog was given or removed (key: `owner/name`): the
    /// local name is made what the catalog says (see [`crate::shared_images`]).
    Image,
}

impl Kind {
    /// As the store keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Function => "function",
            Kind::Route => "route",
            Kind::NamespaceDeleted => "namespace",
            Kind::Image => "image",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Kind> {
        [
            Kind::Token,
            Kind::Function,
            Kind::Route,
            Kind::NamespaceDeleted,
            Kind::Image,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Publishes a change for the other servers. The change itself is stored already, so a
/// failure here does not undo it: it is logged (the others then see it at their next start,
/// or with the next change of the same kind).
pub async fn publish(store: &dyn Store, kind: Kind, key: &str) {
    if let Err(e) = store.publish_change(kind.as_str(), key).await {
        tracing::error!(
            kind = kind.as_str(),
            key,
            "the other servers were not told of a change (they follow it with the next one of its kind, or at their start): {e}"
        );
    }
}

/// Publishes that `owner`'s function `name` changed.
pub async fn publish_function(store: &dyn Store, owner: &Owner, name: &str) {
    publish(store, Kind::Function, &function_key(owner.key(), name)).await;
}
