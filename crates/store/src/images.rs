//! Why a function's image could not be pulled, kept until a pull succeeds or the function goes,
//! so `GET …/functions/{fn}` still says why after a restart.

use async_trait::async_trait;

use crate::Result;

/// One remembered failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    /// The function's namespace, or [`crate::GLOBAL_OWNER`] for a global service.
    pub owner: String,
    pub function: String,
    pub message: String,
}

#[async_trait]
pub trait PullFailureStore: Send + Sync {
    /// Remembers (or replaces) the failure of `owner/function`'s last pull.
    async fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()>;

    /// Forgets `owner/function`'s failure (its image is there now, or it was redeployed or
    /// deleted).
    async fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()>;

    /// Every remembered failure, by owner and function.
    async fn pull_failures(&self) -> Result<Vec<PullFailure>>;
}
