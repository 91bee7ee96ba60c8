//! Tests of safe layer extraction, with tar streams built entry by entry
//! (including names the `tar` builder would refuse to write).

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::digest::sha256_of;

/// One entry of a hand-built tar.
struct E<'a> {
    kind: EntryType,
    name: &'a str,
    data: &'a [u8],
    link: Option<&'a str>,
    mode: u32,
    uid: u64,
    device: Option<(u32, u32)>,
}

fn e<'a>(kind: EntryType, name: &'a str) -> E<'a> {
    E {
        kind,
        name,
        data: b"",
        link: None,
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        device: None,
    }
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        data,
        ..e(EntryType::Regular, name)
    }
}

fn dir(name: &str) -> E<'_> {
    e(EntryType::Directory, name)
}

fn symlink<'a>(name: &'a str, target: &'a str) -> E<'a> {
    E {
        link: Some(target),
        ..e(EntryType::Symlink, name)
    }
}

fn hardlink<'a>(name: &'a str, target: &'a str) -> E<'a> {
    E {
        link: Some(target),
        ..e(EntryType::Link, name)
    }
}

/// A tar with exactly these names (no path cleaning or checks).
fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.name.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(1_600_000_000);
        if let Some(link) = entry.link {
            header.set_link_name_literal(link).unwrap();
        }
        if let Some((major, minor)) = entry.device {
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
        }
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    builder.into_inner().unwrap()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    dest: PathBuf,
    outside: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    Dirs {
        dest: tmp.path().join("layer"),
        outside,
        _tmp: tmp,
    }
}

fn extract(entries: &[E<'_>], dest: &Path) -> Result<Extracted, ImageError> {
    extract_stream(
        &tar_of(entries)[..],
        dest,
        "test layer",
        &ImportLimits::default(),
    )
}

fn assert_refused(result: Result<Extracted, ImageError>, needle: &str) -> String {
    let err = result.expect_err("extraction should be refused");
    let msg = err.to_string();
    assert!(msg.contains(needle), "message '{msg}' lacks '{needle}'");
    msg
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).unwrap().next().is_none()
}

#[test]
fn extracts_files_dirs_links_and_metadata() {
    let d = dirs();
    let busybox = fs::read("/bin/busybox").unwrap();
    let entries = [
        dir("./"),
        dir("bin/"),
        E {
            mode: 0o4755,
            ..file("bin/busybox", &busybox)
        },
        symlink("bin/sh", "busybox"),
        symlink("bin/abs", "/bin/busybox"),
        hardlink("bin/ash", "bin/busybox"),
        E {
            mode: 0o1777,
            ..dir("tmp")
        },
        E {
            uid: 1000,
            mode: 0o600,
            ..file("/home/user/.profile", b"export A=1\n")
        },
        e(EntryType::Fifo, "run/fifo"),
        file("etc/hostname", b"old"),
        file("etc/hostname", b"new"),
    ];
    let tar = tar_of(&entries);
    let out = extract_stream(&tar[..], &d.dest, "layer", &ImportLimits::default()).unwrap();
    assert_eq!(out.diff_id, sha256_of(&tar));
    assert_eq!(out.tar_size, tar.len() as u64);

    let root = &d.dest;
    assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox);
    let meta = fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o755, "setuid is dropped");
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(root.join("bin/abs")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::metadata(root.join("bin/ash")).unwrap().ino(),
        meta.ino(),
        "hard link shares the inode"
    );
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    let profile = fs::metadata(root.join("home/user/.profile")).unwrap();
    assert_eq!((profile.uid(), profile.gid()), (1000, 1000));
    assert_eq!(profile.mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(root.join("home")).unwrap().mode() & 0o777,
        0o755,
        "implicit parents are 0755"
    );
    assert!(fs::symlink_metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"new");
}

#[test]
fn converts_whiteouts_to_overlayfs_form() {
    let d = dirs();
    extract(
        &[
            dir("etc/"),
            file("etc/.wh.passwd", b""),
            file("var/cache/.wh..wh..opq", b""),
            file("var/.wh..wh.plnk", b""),
            file("etc/kept", b"same layer"),
            file("etc/.wh.kept", b""),
            E {
                device: Some((0, 0)),
                ..e(EntryType::Char, "usr/gone")
            },
        ],
        &d.dest,
    )
    .unwrap();
    for whiteout in ["etc/passwd", "usr/gone"] {
        let meta = fs::symlink_metadata(d.dest.join(whiteout)).unwrap();
        assert!(meta.file_type().is_char_device(), "{whiteout}");
        assert_eq!(meta.rdev(), 0, "{whiteout}");
    }
    assert!(!d.dest.join("etc/.wh.passwd").exists());
    assert_eq!(
        fs::read(d.dest.join("etc/kept")).unwrap(),
        b"same layer",
        "a whiteout does not hide its own layer's files"
    );
    assert_eq!(
        xattr::get(d.dest.join("var/cache"), OPAQUE_XATTR).unwrap(),
        Some(b"y".to_vec())
    );
    assert!(is_empty_dir(&d.dest.join("var/cache")));
    assert!(!d.dest.join("var/.wh..wh.plnk").exists());
    assert!(!d.dest.join("var/.wh.plnk").exists());
}

#[test]
fn refuses_parent_dir_entries() {
    let d = dirs();
    let msg = assert_refused(
        extract(&[file("../x", b"evil")], &d.dest),
        "escapes the root filesystem",
    );
    assert!(msg.contains("'../x'"), "{msg}");
    assert!(!d.dest.parent().unwrap().join("x").exists());
    assert_refused(
        extract(&[file("a/../../x", b"evil")], &dirs().dest),
        "escapes",
    );
}

#[test]
fn absolute_paths_land_inside() {
    let d = dirs();
    extract(&[file("/etc/x", b"inside")], &d.dest).unwrap();
    assert_eq!(fs::read(d.dest.join("etc/x")).unwrap(), b"inside");
}

#[test]
fn never_writes_through_a_symlink() {
    let d = dirs();
    let target = d.outside.to_str().unwrap();
    let msg = assert_refused(
        extract(
            &[symlink("evil", target), file("evil/file", b"owned")],
            &d.dest,
        ),
        "symlink 'evil'",
    );
    assert!(msg.contains("'evil/file'"), "{msg}");
    assert!(is_empty_dir(&d.outside));

    // Relative escape, and a directory entry through a symlink.
    let d = dirs();
    assert_refused(
        extract(&[symlink("up", "../../"), file("up/x", b"owned")], &d.dest),
        "symlink 'up'",
    );
    let d = dirs();
    assert_refused(
        extract(&[symlink("up", "../outside"), dir("up/sub")], &d.dest),
        "symlink 'up'",
    );
    assert!(is_empty_dir(&d.outside));

    // Deeper: a symlink replacing a directory.
    let d = dirs();
    assert_refused(
        extract(
            &[dir("a/b"), symlink("a/b", target), file("a/b/c", b"owned")],
            &d.dest,
        ),
        "symlink 'a/b'",
    );
    assert!(is_empty_dir(&d.outside));
}

#[test]
fn replaces_a_symlink_instead_of_following_it() {
    let d = dirs();
    let victim = d.outside.join("victim");
    fs::write(&victim, b"original").unwrap();
    extract(
        &[
            symlink("f", victim.to_str().unwrap()),
            file("f", b"replaced"),
            symlink("g", d.outside.to_str().unwrap()),
            dir("g"),
            e(EntryType::Fifo, "h"),
            symlink("h", victim.to_str().unwrap()),
            hardlink("i", "f"),
        ],
        &d.dest,
    )
    .unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert_eq!(fs::read(d.dest.join("f")).unwrap(), b"replaced");
    assert!(fs::symlink_metadata(d.dest.join("g")).unwrap().is_dir());
    assert!(fs::symlink_metadata(d.dest.join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_dir(&d.outside).unwrap().count(), 1);
}

#[test]
fn refuses_hard_links_outside_or_through_symlinks() {
    let d = dirs();
    assert_refused(
        extract(&[hardlink("passwd", "../../etc/passwd")], &d.dest),
        "escapes the root filesystem",
    );
    let d = dirs();
    let msg = assert_refused(
        extract(
            &[symlink("etc", "/etc"), hardlink("passwd", "etc/passwd")],
            &d.dest,
        ),
        "through the symlink 'etc'",
    );
    assert!(msg.contains("'passwd'"), "{msg}");
    assert!(!d.dest.join("passwd").exists());
    let d = dirs();
    assert_refused(
        extract(&[hardlink("x", "missing")], &d.dest),
        "not in the layer",
    );
    let d = dirs();
    assert_refused(
        extract(&[dir("d"), hardlink("x", "d")], &d.dest),
        "directory",
    );
    // A hard link to an absolute path means the path inside the layer.
    let d = dirs();
    extract(
        &[file("etc/passwd", b"root"), hardlink("p", "/etc/passwd")],
        &d.dest,
    )
    .unwrap();
    assert_eq!(fs::read(d.dest.join("p")).unwrap(), b"root");
}

#[test]
fn refuses_device_nodes_outside_dev() {
    for (kind, name) in [
        (EntryType::Char, "usr/null"),
        (EntryType::Block, "sda"),
        (EntryType::Char, "./var/dev/tty"),
        (EntryType::Block, "devices/sda"),
    ] {
        let d = dirs();
        let result = extract(
            &[E {
                device: Some((8, 0)),
                ..e(kind, name)
            }],
            &d.dest,
        );
        let msg = assert_refused(result, "device node");
        assert!(msg.contains(&format!("'{name}'")), "{msg}");
        assert!(msg.contains("outside /dev"), "{msg}");
        assert!(!d.dest.join(name).exists());
    }
}

#[test]
fn skips_and_counts_device_nodes_under_dev() {
    // What mmdebstrap leaves in /dev: character devices, a block device, a hard link to a
    // device, symlinks and a directory (kept).
    let d = dirs();
    let out = extract(
        &[
            dir("./"),
            dir("./dev/"),
            E {
                device: Some((1, 3)),
                ..e(EntryType::Char, "./dev/null")
            },
            E {
                device: Some((1, 5)),
                ..e(EntryType::Char, "/dev/zero")
            },
            E {
                device: Some((8, 0)),
                ..e(EntryType::Block, "dev/sda")
            },
            hardlink("dev/null2", "dev/null"),
            symlink("dev/fd", "/proc/self/fd"),
            dir("dev/pts/"),
            E {
                device: Some((5, 2)),
                ..e(EntryType::Char, "dev/pts/ptmx")
            },
            file("etc/hostname", b"box\n"),
        ],
        &d.dest,
    )
    .unwrap();
    assert_eq!(out.skipped_devices, 5);
    for skipped in [
        "dev/null",
        "dev/zero",
        "dev/sda",
        "dev/null2",
        "dev/pts/ptmx",
    ] {
        assert!(
            fs::symlink_metadata(d.dest.join(skipped)).is_err(),
            "{skipped} was created"
        );
    }
    assert!(fs::symlink_metadata(d.dest.join("dev/fd"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(d.dest.join("dev/pts").is_dir());
    assert_eq!(fs::read(d.dest.join("etc/hostname")).unwrap(), b"box\n");

    // A layer without device nodes skips none; a hard link under dev/ to a file is kept.
    let d = dirs();
    let out = extract(
        &[
            file("dev/readme", b"x"),
            hardlink("dev/readme2", "dev/readme"),
        ],
        &d.dest,
    )
    .unwrap();
    assert_eq!(out.skipped_devices, 0);
    assert_eq!(fs::read(d.dest.join("dev/readme2")).unwrap(), b"x");
}

#[test]
fn refuses_empty_names_and_bad_whiteouts() {
    let d = dirs();
    assert_refused(extract(&[file("./", b"x")], &d.dest), "empty path");
    let d = dirs();
    assert_refused(extract(&[file("a/.wh..", b"")], &d.dest), "whiteout");
    let d = dirs();
    assert_refused(
        extract(&[symlink("a", "/tmp"), file("a/.wh.x", b"")], &d.dest),
        "symlink 'a'",
    );
}

#[test]
fn reads_gzip_layers_and_hashes_the_uncompressed_stream() {
    use std::io::Write as _;
    let d = dirs();
    let tar = tar_of(&[file("hello", b"world")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let blob = d.outside.join("blob");
    fs::write(&blob, gz.finish().unwrap()).unwrap();
    let out = extract_layer(&blob, &d.dest, "layer", &ImportLimits::default()).unwrap();
    assert_eq!(out.diff_id, sha256_of(&tar));
    assert_eq!(fs::read(d.dest.join("hello")).unwrap(), b"world");
}

#[test]
fn refuses_damaged_archives() {
    let d = dirs();
    let mut tar = tar_of(&[file("hello", &[7u8; 2000])]);
    tar.truncate(1000);
    assert_refused(
        extract_stream(&tar[..], &d.dest, "layer x", &ImportLimits::default()),
        "layer x",
    );
    let d = dirs();
    assert_refused(
        extract_stream(
            &[1u8; 1024][..],
            &d.dest,
            "layer y",
            &ImportLimits::default(),
        ),
        "not a valid tar archive",
    );
}

#[test]
fn handles_long_names_and_refuses_long_escapes() {
    let long = format!("{}/file", "d".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_entry_type(EntryType::Regular);
    builder.append_data(&mut header, &long, &b"ok"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let d = dirs();
    extract_stream(&tar[..], &d.dest, "layer", &ImportLimits::default()).unwrap();
    assert_eq!(fs::read(d.dest.join(&long)).unwrap(), b"ok");

    // A GNU long-name record carrying `..`, which the builder would refuse.
    let evil = format!("{}/../../../../escaped", "a/".repeat(60));
    let mut builder = tar::Builder::new(Vec::new());
    let mut ext = tar::Header::new_gnu();
    ext.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    ext.set_entry_type(EntryType::GNULongName);
    let mut data = evil.clone().into_bytes();
    data.push(0);
    ext.set_size(data.len() as u64);
    ext.set_mode(0o644);
    ext.set_cksum();
    builder.append(&ext, &data[..]).unwrap();
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..5].copy_from_slice(b"short");
    header.set_entry_type(EntryType::Regular);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let d = dirs();
    let result = extract_stream(&tar[..], &d.dest, "layer", &ImportLimits::default());
    let msg = assert_refused(result, "escapes the root filesystem");
    assert!(msg.contains("escaped"), "{msg}");
}

/// Blocks actually allocated to a file, in bytes.
fn allocated(path: &Path) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn runs_of_zeros_become_holes_and_the_length_is_kept() {
    let d = dirs();
    let mut data = vec![0u8; 3 << 20];
    data[..5].copy_from_slice(b"start");
    data[(1 << 20) + 7] = 1;
    let n = data.len();
    data[n - 3..].copy_from_slice(b"end");
    let trailing_hole = vec![0u8; 2 << 20];
    extract(
        &[
            file("mostly-zero", &data),
            file("only-zero", &trailing_hole),
        ],
        &d.dest,
    )
    .unwrap();
    let path = d.dest.join("mostly-zero");
    assert_eq!(fs::read(&path).unwrap(), data);
    assert!(
        allocated(&path) <= 64 << 10,
        "{} bytes allocated",
        allocated(&path)
    );
    let zeros = d.dest.join("only-zero");
    assert_eq!(fs::metadata(&zeros).unwrap().len(), 2 << 20);
    assert_eq!(allocated(&zeros), 0);
}

/// GNU tar's own sparse format (`tar --sparse`): a 4 GiB file of which a few bytes are data.
#[test]
fn gnu_sparse_files_stay_sparse_and_count_at_their_apparent_size() {
    let d = dirs();
    let src = d.outside.join("src");
    fs::create_dir(&src).unwrap();
    let big = src.join("big");
    let file = File::create(&big).unwrap();
    file.set_len(4 << 30).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"middle", 2 << 30).unwrap();
    drop(file);
    let tar = d.outside.join("sparse.tar");
    let status = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-C"])
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg("big")
        .status()
        .expect("GNU tar");
    assert!(status.success());
    assert!(
        fs::metadata(&tar).unwrap().len() < 1 << 20,
        "a small archive"
    );

    // Under a bound smaller than its apparent size: refused, nothing of it written.
    let small = ImportLimits {
        max_layer_bytes: 1 << 30,
        ..ImportLimits::default()
    };
    let err = extract_stream(File::open(&tar).unwrap(), &d.dest, "layer s", &small)
        .expect_err("over the bound");
    let msg = err.to_string();
    assert!(
        msg.contains("layer s unpacks to more than 1 GiB") && msg.contains("'big'"),
        "{msg}"
    );
    assert!(msg.contains("max-layer-size"), "{msg}");
    assert!(!d.dest.join("big").exists());

    // Within the bound: extracted with its holes.
    let dest = d.outside.join("layer-ok");
    extract_stream(
        File::open(&tar).unwrap(),
        &dest,
        "layer",
        &ImportLimits::default(),
    )
    .unwrap();
    let out = dest.join("big");
    assert_eq!(fs::metadata(&out).unwrap().len(), 4 << 30);
    assert!(
        allocated(&out) <= 64 << 10,
        "{} bytes allocated",
        allocated(&out)
    );
    let mut middle = [0u8; 6];
    std::os::unix::fs::FileExt::read_exact_at(&File::open(&out).unwrap(), &mut middle, 2 << 30)
        .unwrap();
    assert_eq!(&middle, b"middle");
}

#[test]
fn the_bound_adds_up_every_file_of_the_layer() {
    let d = dirs();
    let limits = ImportLimits {
        max_layer_bytes: 10,
        ..ImportLimits::default()
    };
    let ok = extract_stream(
        &tar_of(&[file("a", b"12345"), file("b", b"12345")])[..],
        &d.dest,
        "layer",
        &limits,
    );
    assert!(ok.is_ok());
    let over = extract_stream(
        &tar_of(&[file("a", b"12345"), file("b", b"123456")])[..],
        &d.outside.join("l2"),
        "layer t",
        &limits,
    );
    assert_refused(over, "layer t unpacks to more than 10 bytes (at 'b'");
}

proptest::proptest! {
    /// Whatever mix of data and zero runs, read in whatever pieces, the copy has exactly the
    /// input's bytes and length.
    #[test]
    fn sparse_copies_are_exact(
        pieces in proptest::collection::vec((0usize..3, 1usize..20_000), 0..12),
        piece_reads in 1usize..70_000,
    ) {
        let mut data = Vec::new();
        for (i, (kind, len)) in pieces.iter().enumerate() {
            match kind {
                0 => data.resize(data.len() + len * 8, 0),
                _ => data.extend((0..*len).map(|j| (i + j) as u8 | 1)),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        /// A reader that returns at most `n` bytes per read.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut buf = vec![0u8; COPY_BUF_SIZE];
        let len = copy_sparse(&mut Trickle(&data, piece_reads), &mut file, &path, &mut buf)
            .map_err(|_| "copy failed")
            .unwrap();
        drop(file);
        proptest::prop_assert_eq!(len, data.len() as u64);
        proptest::prop_assert_eq!(fs::read(&path).unwrap(), data);
    }
}
