//! The import formats. Each one reads its input and returns an
//! [`ImportPlan`]: which files hold the config and layers and what digests
//! they must have. Storing the plan is the job of `import`.

pub(crate) mod docker;
pub(crate) mod oci;
pub(crate) mod rootfs;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::config::ParsedConfig;
use crate::error::{io_err, ImageError};
use crate::paths::components;
use crate::RootfsOptions;

/// Largest JSON document (manifest, index, config) read into memory.
pub(crate) const MAX_JSON_SIZE: u64 = 32 * 1024 * 1024;

/// Where an import reads its files from.
pub(crate) trait FileSource {
    /// The regular file at the `/`-separated relative `name`, or `None`.
    fn file(&self, name: &str) -> Result<Option<PathBuf>, ImageError>;
    /// Whether the files are the import's own scratch copies, which may be
    /// hard-linked into the store instead of copied.
    fn is_scratch(&self) -> bool;
}

/// An OCI image layout directory given by the user: read in place.
#[derive(Debug)]
pub(crate) struct LayoutDir {
    root: PathBuf,
    /// The store wrote this layout into its own scratch space.
    own: bool,
}

impl LayoutDir {
    /// A layout the store itself wrote into its `tmp/` (a pulled image):
    /// its files may be hard-linked into the store.
    pub(crate) fn own(root: &Path) -> Result<LayoutDir, ImageError> {
        Ok(LayoutDir {
            own: true,
            ..LayoutDir::new(root)?
        })
    }

    pub(crate) fn new(root: &Path) -> Result<LayoutDir, ImageError> {
        let meta = fs::metadata(root).map_err(io_err("open", root))?;
        if !meta.is_dir() {
            return Err(ImageError::UnknownFormat {
                path: root.to_path_buf(),
                reason: "it is not a directory (an OCI image layout directory was expected)".into(),
            });
        }
        Ok(LayoutDir {
            root: root.to_path_buf(),
            own: false,
        })
    }
}

impl FileSource for LayoutDir {
    fn file(&self, name: &str) -> Result<Option<PathBuf>, ImageError> {
        let comps = components(name.as_bytes())
            .map_err(|_| ImageError::unsafe_entry(name, "escapes the image layout directory"))?;
        let path = comps.iter().fold(self.root.clone(), |p, c| p.join(c));
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("inspect", &path, e)),
        }
    }

    fn is_scratch(&self) -> bool {
        self.own
    }
}

/// Reads a JSON document of at most [`MAX_JSON_SIZE`] bytes.
pub(crate) fn read_json_file(path: &Path, what: &str) -> Result<Vec<u8>, ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > MAX_JSON_SIZE {
        return Err(ImageError::invalid(format!(
            "{what} is larger than {} MiB",
            MAX_JSON_SIZE / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// Everything an import needs to store an image.
#[derive(Debug)]
pub(crate) struct ImportPlan {
    /// The original manifest with its verified digest; `None` means one is
    /// synthesised.
    pub(crate) manifest: Option<(Vec<u8>, String)>,
    pub(crate) config: ConfigSource,
    pub(crate) layers: Vec<LayerSource>,
}

/// Where an image's config comes from.
#[derive(Debug)]
pub(crate) enum ConfigSource {
    /// A config document, already parsed (and digest-verified when it came
    /// with a digest).
    Document {
        bytes: Vec<u8>,
        parsed: ParsedConfig,
    },
    /// To be written from root filesystem options once the layer's diff ID
    /// is known.
    Rootfs(RootfsOptions),
    /// A base image's config document, changed and given the full list of diff IDs once the
    /// appended layer's is known (`append.rs`).
    Appended {
        base: Vec<u8>,
        changes: crate::config::ConfigChanges,
    },
}

/// One layer blob to import.
#[derive(Debug, Clone)]
pub(crate) struct LayerSource {
    pub(crate) path: PathBuf,
    /// The file is scratch space that may be hard-linked into the store.
    pub(crate) scratch: bool,
    /// The digest the blob must have, when known.
    pub(crate) digest: Option<String>,
    /// The size the blob must have, when known.
    pub(crate) size: Option<u64>,
    /// The diff ID the uncompressed layer must have, when known.
    pub(crate) diff_id: Option<String>,
    /// How to name the layer in messages.
    pub(crate) what: String,
}
