//! Where the runc driver gets an image's layers from: a [`LayerSource`] it is constructed with
//! (the server's image store), which turns the spec's image reference into extracted layer
//! directories on this host.

use std::path::PathBuf;

use faasbox_driver::ImageRef;

/// Resolves image references to extracted layer directories on this host. The server
/// implements it over its image store; the driver depends on nothing of the store but this.
pub trait LayerSource: Send + Sync {
    /// The extracted layer directories of `image`, bottom first; they become the overlayfs
    /// lower directories and are never written to. An error says why the image has none here
    /// (e.g. it was removed from the store) and what to do about it.
    fn layer_dirs(&self, image: &ImageRef) -> Result<Vec<PathBuf>, String>;
}
