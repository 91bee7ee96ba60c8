//! Why a function's image could not be pulled, kept until a pull succeeds or the function goes,
//! so `GET …/functions/{fn}` still says why after a restart.

use async_trait::async_trait;

use crate::Result;

/// One remembered failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    /// The function's namespace, or [`crate::GLOBAL_OWNER`] for a global service.
    pub owner: String,
    /// The function's (or global service's) name.
    pub function: String,
    /// Why the pull failed, as the server will show it.
    pub message: String,
}

/// Remembers why functions' images could not be pulled. A namespace's failures go with the
/// namespace ([`crate::NamespaceStore::delete_namespace`]); [`crate::GLOBAL_OWNER`]'s stay.
#[async_trait]
pub trait PullFailureStore: Send + Sync {
    /// Remembers (or replaces) the failure of `owner/function`'s last pull; one failure per
    /// `owner/function`, the newest wins. `now` is when it failed. The owner is not checked.
    async fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()>;

    /// Forgets `owner/function`'s failure (its image is there now, or it was redeployed or
    /// deleted). Nothing to forget is not an error.
    async fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()>;

    /// Every remembered failure, ordered by owner, then function.
    async fn pull_failures(&self) -> Result<Vec<PullFailure>>;
}
