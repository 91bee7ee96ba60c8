//! The master key on disk and from the environment.
//!
//! A key file holds the key as base64 text and a newline (32 raw bytes are accepted too). It
//! must not be readable by group or others. Files are written to a temporary file (mode 0600)
//! in the same directory, fsynced, then renamed into place, and the directory is fsynced, so a
//! key file is always either the old key or the new one, never a torn write.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::keys::{MasterKey, KEY_LEN};

/// Environment variable holding the master key as base64.
pub const ENV_KEY: &str = "FAASBOX_MASTER_KEY";
/// Environment variable holding the path of a master key file.
pub const ENV_KEY_FILE: &str = "FAASBOX_MASTER_KEY_FILE";

/// Key files are tiny; anything larger is not one.
const MAX_KEY_FILE: u64 = 1024;

impl MasterKey {
    /// Reads a key file. Refuses files that group or others may read, and files that are not
    /// regular files.
    pub fn from_file(path: &Path) -> Result<MasterKey, KeyError> {
        let read_err = |source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(read_err(e)),
        };
        // Checked on the open file, so it is the file that is read.
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut content = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut content)
            .map_err(read_err)?;
        let origin = format!("key file {}", path.display());
        if content.len() == KEY_LEN {
            // 32 raw bytes (`head -c 32 /dev/urandom > master.key`).
            return MasterKey::from_slice(&content).ok_or_else(|| KeyError::Invalid {
                origin,
                reason: "it is not a key".into(),
            });
        }
        let text = std::str::from_utf8(&content).map_err(|_| KeyError::Invalid {
            origin: origin.clone(),
            reason: format!("it holds neither base64 text nor {KEY_LEN} raw bytes"),
        })?;
        MasterKey::parse_base64(text, &origin)
    }

    /// Reads the key file at `path`, or creates it (and its directory, mode 0700) with a new
    /// random key and mode 0600 when it does not exist. Two processes racing to create it end
    /// up with the same key.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, KeyError> {
        match MasterKey::from_file(path) {
            Err(KeyError::NotFound { .. }) => {}
            other => return other,
        }
        let key = MasterKey::generate()?;
        let write_err = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = parent_dir(path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
        let tmp = write_temp(path, &key)?;
        // A hard link never replaces an existing file: if another process created the key file
        // meanwhile, its key wins and ours is dropped.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir).map_err(write_err)?;
                Ok(key)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::from_file(path),
            Err(_) => {
                // File systems without hard links: fall back to a plain rename.
                let tmp = write_temp(path, &key)?;
                fs::rename(&tmp, path).map_err(write_err)?;
                sync_dir(dir).map_err(write_err)?;
                Ok(key)
            }
        }
    }
}

/// Atomically writes `key` to `path` (replacing any file there) with mode 0600: a temporary
/// file in the same directory is written and fsynced, renamed over `path`, and the directory
/// is fsynced.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let tmp = write_temp(path, key)?;
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    sync_dir(parent_dir(path)).map_err(write_err)
}

/// Where a rotation stages the new key before its database commit: `<path>.new`.
pub fn staged_key_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Moves a staged key (`<path>.new`) over `path`.
pub(crate) fn commit_staged_key(path: &Path) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::rename(staged_key_path(path), path).map_err(write_err)?;
    sync_dir(parent_dir(path)).map_err(write_err)
}

/// Writes `key` to a new temporary file next to `path`, mode 0600, fsynced. Returns its path.
fn write_temp(path: &Path, key: &MasterKey) -> Result<PathBuf, KeyError> {
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(KeyError::Random)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", hex::encode(suffix)));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask can only take bits away; set the mode exactly anyway.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(key.to_base64().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        KeyError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(tmp)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Where the master key comes from, in order of precedence: `FAASBOX_MASTER_KEY` (base64),
/// `FAASBOX_MASTER_KEY_FILE` (a path that must exist), or a default key file created on first
/// use.
pub enum KeySource {
    /// The key itself, as base64 text from the environment.
    Base64(Zeroizing<String>),
    /// A key file given from outside; it must exist.
    File(PathBuf),
    /// The default key file, created on first use.
    DefaultFile(PathBuf),
}

impl KeySource {
    /// Reads `FAASBOX_MASTER_KEY` and `FAASBOX_MASTER_KEY_FILE` (empty counts as unset).
    pub fn from_env(default_file: PathBuf) -> Result<KeySource, KeyError> {
        let key = std::env::var(ENV_KEY).ok().map(Zeroizing::new);
        let file = std::env::var_os(ENV_KEY_FILE).map(PathBuf::from);
        KeySource::from_values(key, file, default_file)
    }

    /// [`KeySource::from_env`] with the variables' values given.
    pub fn from_values(
        key: Option<Zeroizing<String>>,
        file: Option<PathBuf>,
        default_file: PathBuf,
    ) -> Result<KeySource, KeyError> {
        let key = key.filter(|k| !k.trim().is_empty());
        let file = file.filter(|f| !f.as_os_str().is_empty());
        match (key, file) {
            (Some(_), Some(_)) => Err(KeyError::Ambiguous(ENV_KEY, ENV_KEY_FILE)),
            (Some(key), None) => Ok(KeySource::Base64(key)),
            (None, Some(file)) => Ok(KeySource::File(file)),
            (None, None) => Ok(KeySource::DefaultFile(default_file)),
        }
    }

    /// Loads the key. The default file is created if missing; use [`crate::Vault::open`] to
    /// refuse that when the database already holds data keys.
    pub fn load(&self) -> Result<MasterKey, KeyError> {
        match self {
            KeySource::Base64(text) => MasterKey::parse_base64(text, ENV_KEY),
            KeySource::File(path) => MasterKey::from_file(path),
            KeySource::DefaultFile(path) => MasterKey::load_or_create(path),
        }
    }

    /// The key file a rotation should write, if the key lives in one.
    pub fn key_file(&self) -> Option<&Path> {
        match self {
            KeySource::Base64(_) => None,
            KeySource::File(path) | KeySource::DefaultFile(path) => Some(path),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Base64(_) => write!(f, "environment variable {ENV_KEY}"),
            KeySource::File(path) | KeySource::DefaultFile(path) => {
                write!(f, "key file {}", path.display())
            }
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Base64(_) => f.write_str("KeySource::Base64(…)"),
            KeySource::File(path) => f.debug_tuple("KeySource::File").field(path).finish(),
            KeySource::DefaultFile(path) => {
                f.debug_tuple("KeySource::DefaultFile").field(path).finish()
            }
        }
    }
}
