//! The error type of the image store. Every message says what is wrong and,
//! where there is something to do about it, what to do.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while importing, reading or removing images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An image reference that faasbox cannot use as a name.
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Options for a root filesystem import that make no sense.
    #[error("invalid image option: {0}")]
    InvalidOptions(String),

    /// No image has that name or digest.
    #[error("image '{0}' not found; list images to see what is imported, or import it first")]
    NotFound(String),

    /// A file operation failed.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        /// What was being done (`open`, `rename`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// The file is none of the archive formats faasbox understands.
    #[error(
        "'{}' is not a docker archive, OCI layout or root filesystem tarball: {reason}",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was looked for and not found.
        reason: String,
    },

    /// An archive entry that would write outside the image or through a link.
    #[error("image archive entry '{entry}' {reason}; refusing to import")]
    UnsafeEntry {
        /// The entry's path in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },

    /// A character or block device in a layer, outside `/dev` (those under it are skipped).
    #[error(
        "image layer contains device node '{entry}' outside /dev; faasbox does not import \
         device nodes there (those under /dev are skipped, as the runtime provides /dev): \
         remove it from the image"
    )]
    DeviceNode {
        /// The device's path in the layer.
        entry: String,
    },

    /// Content whose digest is not the one it was announced with.
    #[error(
        "{what} has digest {actual}, expected {expected}; the image is corrupt or was modified \
         after export — export it again"
    )]
    DigestMismatch {
        /// The blob or layer checked.
        what: String,
        /// The digest it was announced with.
        expected: String,
        /// The digest of what was read.
        actual: String,
    },

    /// A well-formed but unsupported feature (zstd layers, sha512 digests, ...).
    #[error("unsupported image: {0}")]
    Unsupported(String),

    /// A layer (or an archive entry) unpacks to more than the import bound.
    #[error(
        "{what} unpacks to more than {} (at '{entry}'; files count at their apparent size, a sparse file at its full length); \
         refusing to import it. The server's `max-layer-size` setting raises the bound",
        show_bytes(*limit)
    )]
    TooLarge {
        /// The layer or archive.
        what: String,
        /// The entry at which the bound was passed.
        entry: String,
        /// The bound in bytes.
        limit: u64,
    },

    /// A pull whose layers (as the manifest gives their sizes) are more than a pull may
    /// download.
    #[error(
        "{reference}'s layers are {} together, more than the {} a pull may download; refusing \
         to pull it (nothing was downloaded). The server's `max-upload-size` setting raises the bound",
        show_bytes(*bytes),
        show_bytes(*limit)
    )]
    DownloadTooLarge {
        /// The image reference pulled.
        reference: String,
        /// Its layers' sizes together.
        bytes: u64,
        /// The bound in bytes.
        limit: u64,
    },

    /// Source code (a tar or tar.gz of a file tree) that cannot become a code layer: an entry
    /// that is not a directory or regular file, a path out of the tree, too many entries.
    #[error("invalid source code: {0}")]
    InvalidSource(String),

    /// A malformed image: bad JSON, missing blobs, inconsistent metadata, a
    /// layer that is not a tar archive.
    #[error("invalid image: {0}")]
    InvalidImage(String),

    /// The registry refused the request: wrong or missing credentials (401)
    /// or no access to the repository (403). Never carries the password.
    #[error("{}", unauthorized_message(registry, user.as_deref(), *status))]
    Unauthorized {
        /// `host[:port]` of the registry.
        registry: String,
        /// The user whose credentials were sent; `None` when none were.
        user: Option<String>,
        /// The registry's HTTP status (401 or 403).
        status: u16,
    },

    /// The registry does not have the image (manifest or repository unknown).
    #[error(
        "image '{reference}' was not found in registry {registry} (manifest unknown); \
         check the repository name and tag"
    )]
    ManifestUnknown {
        /// `host[:port]` of the registry.
        registry: String,
        /// The reference asked for.
        reference: String,
    },

    /// An image index that has no image for this machine's platform.
    #[error(
        "image '{reference}' has no linux/{wanted} image (it has: {available}); \
         pull the digest of a variant that runs here, or build the image for linux/{wanted}"
    )]
    PlatformNotFound {
        /// The reference asked for.
        reference: String,
        /// This machine's architecture (`amd64`, …).
        wanted: String,
        /// The platforms the index lists.
        available: String,
    },

    /// The registry could not be reached at all.
    #[error(
        "cannot reach registry {registry}: {reason}; check the address and that the registry \
         is running (a registry without TLS must be listed as an insecure registry)"
    )]
    RegistryUnreachable {
        /// `host[:port]` of the registry.
        registry: String,
        /// The connection's error.
        reason: String,
    },

    /// A download or upload broke off midway. Downloaded bytes are kept:
    /// pulling again resumes.
    #[error("transfer of {what} from/to registry {registry} broke off: {reason}; run it again (a pull resumes where it stopped)")]
    TransferInterrupted {
        /// `host[:port]` of the registry.
        registry: String,
        /// The blob or manifest moved.
        what: String,
        /// How it broke off.
        reason: String,
    },

    /// Content from a registry whose digest is not the one announced.
    #[error(
        "registry {registry} sent {what} with digest {actual}, expected {expected}; the \
         download was corrupted or the registry's copy is damaged — pull again, and if it \
         repeats, push the image to the registry again"
    )]
    RemoteDigestMismatch {
        /// `host[:port]` of the registry.
        registry: String,
        /// The blob or manifest received.
        what: String,
        /// The digest it was announced with.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// Any other failure reported by a registry (5xx, protocol violations,
    /// rate limits).
    #[error("registry {registry} failed: {message}")]
    Registry {
        /// `host[:port]` of the registry.
        registry: String,
        /// What the registry (or the protocol client) said.
        message: String,
    },

    /// The store's own files are damaged.
    #[error("image store file '{}' is damaged: {reason}; restore it from a backup or remove the store directory to start empty", path.display())]
    CorruptStore {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl ImageError {
    /// Whether the error is about what the caller asked for or sent (a bad
    /// name, a bad or hostile archive, a missing image) rather than a failure
    /// of the store itself (I/O, a damaged store). Servers map the first kind
    /// to 4xx and the second to 5xx.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            ImageError::Io { .. } | ImageError::CorruptStore { .. }
        )
    }

    /// Whether the error comes from a remote registry (unreachable,
    /// interrupted, refused, failing) rather than from the request or the
    /// store. Servers map these to 502.
    pub fn is_registry_error(&self) -> bool {
        matches!(
            self,
            ImageError::RegistryUnreachable { .. }
                | ImageError::TransferInterrupted { .. }
                | ImageError::RemoteDigestMismatch { .. }
                | ImageError::Registry { .. }
        )
    }

    /// Wraps an I/O error with what was being done to which path.
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        ImageError::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Shorthand for [`ImageError::UnsafeEntry`].
    pub(crate) fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        ImageError::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ImageError::InvalidImage`].
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        ImageError::InvalidImage(reason.into())
    }
}

/// `map_err` helper: `.map_err(io_err("open", &path))`.
pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::io(action, path, source)
}

/// Names no command: which credentials were used (a namespace's, the global ones) and who may
/// change them is the caller's to say.
fn unauthorized_message(registry: &str, user: Option<&str>, status: u16) -> String {
    match (user, status) {
        (Some(user), 403) => format!(
            "registry {registry} denied user '{user}' access (403); check that the user may \
             use this repository"
        ),
        (Some(user), _) => format!(
            "registry {registry} refused the credentials for user '{user}' ({status}); \
             check the stored ones"
        ),
        (None, _) => format!(
            "registry {registry} requires credentials ({status}) and none are configured for it"
        ),
    }
}

/// A byte count for messages: "16 GiB", "512 MiB", "1234 bytes".
fn show_bytes(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}
