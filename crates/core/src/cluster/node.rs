//! This server's node id: 16 random hex digits kept in `<data-dir>/node.id` (mode 0600),
//! made at the first start and read at every later one, so a restarted server knows which
//! of the store's runs were its own.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The name of the node id's file in the data directory.
pub const FILE_NAME: &str = "node.id";

/// A server's id among the servers sharing one store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

/// Why the node id could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum NodeIdError {
    /// Reading or writing the file failed.
    #[error("{action} the node id file {}: {source} (the data directory must be writable by the server)", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file holds something else than 16 hex digits.
    #[error("the node id file {} holds {found:?}, not 16 hex digits; remove it and the server makes a new id", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What it holds (trimmed).
        found: String,
    },
    /// No randomness.
    #[error("no random bytes for a node id: {0}")]
    Random(String),
}

impl NodeId {
    /// Reads `<data_dir>/node.id`, or makes it (0600) with a new random id if it is missing.
    pub fn load_or_create(data_dir: &Path) -> Result<NodeId, NodeIdError> {
        let path = data_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return NodeId::parse(text.trim()).ok_or_else(|| NodeIdError::Invalid {
                    path: path.clone(),
                    found: text.trim().chars().take(64).collect(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(NodeIdError::Io {
                    action: "reading",
                    path,
                    source,
                })
            }
        }
        let id = NodeId::random()?;
        let io = |action, source| NodeIdError::Io {
            action,
            path: path.clone(),
            source,
        };
        // Written whole into a temporary file, then renamed: a crash never leaves half an id.
        let partial = data_dir.join(format!("{FILE_NAME}.partial"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| io("creating", e))?;
        file.write_all(format!("{}\n", id.0).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("writing", e))?;
        std::fs::rename(&partial, &path).map_err(|e| io("creating", e))?;
        Ok(id)
    }

    /// A new random id.
    pub fn random() -> Result<NodeId, NodeIdError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| NodeIdError::Random(e.to_string()))?;
        Ok(NodeId(hex::encode(bytes)))
    }

    /// The id if `text` is one (16 lowercase hex digits).
    pub fn parse(text: &str) -> Option<NodeId> {
        (text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| NodeId(text.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_id_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeId::load_or_create(dir.path()).unwrap();
        assert_eq!(first.as_str().len(), 16);
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(NodeId::load_or_create(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(NodeId::load_or_create(other.path()).unwrap(), first);
    }

    #[test]
    fn a_damaged_id_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "not an id\n").unwrap();
        let error = NodeId::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(error.contains("remove it"), "{error}");
    }
}
