//! Tests of code layers, with source archives built entry by entry (including entries the
//! `tar` builder would refuse to write: `..`, absolute paths).

use super::*;
use std::io::Write;

/// One source entry.
#[derive(Clone, Copy)]
struct E<'a> {
    kind: EntryType,
    name: &'a str,
    data: &'a [u8],
    mode: u32,
    link: Option<&'a str>,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        kind: EntryType::Regular,
        name,
        data,
        mode: 0o644,
        link: None,
    }
}

fn dir(name: &str) -> E<'_> {
    E {
        kind: EntryType::Directory,
        name,
        data: b"",
        mode: 0o755,
        link: None,
    }
}

/// A tar with exactly these names, owned by 1000:1000, with a time stamp.
fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.name.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(1_700_000_000);
        if let Some(link) = entry.link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn src(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn dest(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn layer(&self, entries: &[E<'_>]) -> Result<(CodeLayer, Vec<u8>), ImageError> {
        self.layer_bounded(entries, &default_bounds())
    }

    fn layer_bounded(
        &self,
        entries: &[E<'_>],
        bounds: &Bounds,
    ) -> Result<(CodeLayer, Vec<u8>), ImageError> {
        let src = self.src("src.tar", &tar_of(entries));
        let dest = self.dest("layer.tar");
        let result = build(&src, "/function", &dest, bounds)?;
        assert!(!sibling(&dest, "spool").exists(), "the spool file is left");
        Ok((result, fs::read(&dest).unwrap()))
    }
}

fn default_bounds() -> Bounds {
    Bounds {
        bytes: ImportLimits::default().max_layer_bytes,
        entries: MAX_CODE_ENTRIES,
        path: MAX_CODE_PATH,
    }
}

/// (path, type, mode, uid, gid, mtime, contents) of each entry of a layer tar.
type Listed = (String, EntryType, u32, u64, u64, u64, Vec<u8>);

fn list(tar: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                data,
            )
        })
        .collect()
}

fn err_of(result: Result<(CodeLayer, Vec<u8>), ImageError>) -> String {
    match result {
        Ok((layer, _)) => panic!("accepted: {layer:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn repacks_a_nested_tree_under_the_prefix() {
    let d = Dir::new();
    let (layer, tar) = d
        .layer(&[
            dir("./"),
            file("./main.py", b"import lib.util\n"),
            // No entry for `lib/`: it is made 0755.
            file("./lib/util.py", b"X = 1\n"),
            E {
                mode: 0o4755,
                ..file("./bin/run.sh", b"#!/bin/sh\n")
            },
            E {
                mode: 0o1777,
                ..dir("./bin/")
            },
            dir("empty/"),
        ])
        .unwrap();
    assert_eq!(
        layer,
        CodeLayer {
            files: 3,
            bytes: 16 + 6 + 10,
            paths: vec!["bin/run.sh".into(), "lib/util.py".into(), "main.py".into()],
        }
    );
    let entries = list(&tar);
    let summary: Vec<(&str, EntryType, u32)> = entries
        .iter()
        .map(|(p, k, m, ..)| (p.as_str(), *k, *m))
        .collect();
    assert_eq!(
        summary,
        [
            ("function/", EntryType::Directory, 0o755),
            ("function/bin/", EntryType::Directory, 0o777),
            ("function/bin/run.sh", EntryType::Regular, 0o755),
            ("function/empty/", EntryType::Directory, 0o755),
            ("function/lib/", EntryType::Directory, 0o755),
            ("function/lib/util.py", EntryType::Regular, 0o644),
            ("function/main.py", EntryType::Regular, 0o644),
        ]
    );
    for (path, _, _, uid, gid, mtime, _) in &entries {
        assert_eq!((*uid, *gid, *mtime), (0, 0, 0), "{path}");
    }
    assert_eq!(entries[5].6, b"X = 1\n");
    assert_eq!(entries[6].6, b"import lib.util\n");

    // A deeper prefix gets all its directories.
    let src = d.src("one.tar", &tar_of(&[file("a.py", b"")]));
    let dest = d.dest("deep.tar");
    code_layer(&src, "/srv/app/", &dest, &ImportLimits::default()).unwrap();
    let names: Vec<String> = list(&fs::read(&dest).unwrap())
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, ["srv/", "srv/app/", "srv/app/a.py"]);
}

#[test]
fn the_same_tree_gives_the_same_bytes() {
    let d = Dir::new();
    let (_, a) = d
        .layer(&[
            dir("pkg/"),
            file("pkg/b.py", b"b"),
            file("pkg/a.py", b"a"),
            file("z.py", b"z"),
        ])
        .unwrap();
    // Another order, other owners and times, gzip, explicit `./`: the same layer.
    let mut other = tar_of(&[
        file("./z.py", b"z"),
        file("pkg/a.py", b"a"),
        file("./pkg/b.py", b"b"),
    ]);
    other = gzip(&other);
    let src = d.src("other.tar.gz", &other);
    let dest = d.dest("other-layer.tar");
    code_layer(&src, "/function", &dest, &ImportLimits::default()).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), a);

    // A changed byte gives another layer.
    let (_, c) = d
        .layer(&[
            dir("pkg/"),
            file("pkg/b.py", b"B"),
            file("pkg/a.py", b"a"),
            file("z.py", b"z"),
        ])
        .unwrap();
    assert_ne!(c, a);
}

#[test]
fn refuses_paths_out_of_the_tree() {
    let d = Dir::new();
    let e = err_of(d.layer(&[file("../evil.py", b"x")]));
    assert!(e.contains("'../evil.py'") && e.contains(".."), "{e}");
    let e = err_of(d.layer(&[file("a/../../evil.py", b"x")]));
    assert!(e.contains("'a/../../evil.py'"), "{e}");
    let e = err_of(d.layer(&[file("/etc/passwd", b"x")]));
    assert!(e.contains("'/etc/passwd'") && e.contains("absolute"), "{e}");
    let e = err_of(d.layer(&[file("etc/.wh.passwd", b"")]));
    assert!(e.contains(".wh."), "{e}");
    let e = err_of(d.layer(&[file("a", b"x"), file("a/b", b"y")]));
    assert!(e.contains("both a file and a directory"), "{e}");
    let e = err_of(d.layer(&[file("a/b", b"y"), file("a", b"x")]));
    assert!(e.contains("both a file and a directory"), "{e}");
    let e = err_of(d.layer(&[dir("only/")]));
    assert!(e.contains("no files"), "{e}");

    for bad in ["function", "/", "/a/../b", "/.wh.x"] {
        let src = d.src("ok.tar", &tar_of(&[file("a.py", b"")]));
        let err = code_layer(&src, bad, &d.dest("p.tar"), &ImportLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::InvalidOptions(_)), "{bad}: {err}");
    }
}

#[test]
fn refuses_links_and_devices_naming_the_entry() {
    let d = Dir::new();
    let link = |kind, name| E {
        kind,
        name,
        data: b"",
        mode: 0o777,
        link: Some("main.py"),
    };
    let e = err_of(d.layer(&[file("main.py", b""), link(EntryType::Symlink, "ln")]));
    assert!(e.contains("'ln'") && e.contains("symbolic link"), "{e}");
    let e = err_of(d.layer(&[file("main.py", b""), link(EntryType::Link, "hard")]));
    assert!(e.contains("'hard'") && e.contains("hard link"), "{e}");
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        let e = err_of(d.layer(&[E {
            kind,
            name: "dev-null",
            data: b"",
            mode: 0o666,
            link: None,
        }]));
        assert!(e.contains("'dev-null'") && e.contains("device node"), "{e}");
    }
    // Nothing is left behind by a refused source.
    assert!(!d.dest("layer.tar").exists());
}

#[test]
fn bounds_bytes_entries_and_path_length() {
    let d = Dir::new();
    let small = Bounds {
        bytes: 10,
        entries: 3,
        path: 40,
    };
    d.layer_bounded(&[file("a", b"12345"), file("b", b"12345")], &small)
        .unwrap();
    let err = d
        .layer_bounded(&[file("a", b"12345"), file("b", b"123456")], &small)
        .unwrap_err();
    assert!(
        matches!(err, ImageError::TooLarge { ref entry, .. } if entry == "b"),
        "{err}"
    );

    d.layer_bounded(&[dir("d/"), file("d/a", b""), file("b", b"")], &small)
        .unwrap();
    let e = err_of(d.layer_bounded(
        &[dir("d/"), file("d/a", b""), file("b", b""), file("c", b"")],
        &small,
    ));
    assert!(e.contains("more than 3 entries"), "{e}");

    // "function/" is 9 bytes: 31 bytes are left for the entry's own path.
    let ok = "d/".repeat(14) + "ab";
    d.layer_bounded(
        &[file(&ok, b"")],
        &Bounds {
            entries: 100,
            ..small
        },
    )
    .unwrap();
    let long = "d/".repeat(15) + "ab";
    let e = err_of(d.layer_bounded(
        &[file(&long, b"")],
        &Bounds {
            entries: 100,
            ..small
        },
    ));
    assert!(e.contains("longer than 40 bytes"), "{e}");

    // The public entry point uses the import limits for bytes.
    let src = d.src("big.tar", &tar_of(&[file("a", &[7u8; 100])]));
    let limits = ImportLimits {
        max_layer_bytes: 99,
        ..ImportLimits::default()
    };
    let err = code_layer(&src, "/function", &d.dest("big-layer.tar"), &limits).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
}

#[test]
fn refuses_what_is_not_a_tar() {
    let d = Dir::new();
    let src = d.src(
        "text.tar",
        b"this is not a tar archive, just some text that goes on",
    );
    let err = code_layer(
        &src,
        "/function",
        &d.dest("x.tar"),
        &ImportLimits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("source"), "{err}");
}
