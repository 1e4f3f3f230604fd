//! Puts an export's files in place so that nothing is ever half-written:
//! every file goes to a temporary name in its final directory first and is
//! renamed into place only when all of them were written; then what the
//! previous export wrote and this one does not is removed.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{ExportFile, FileKind};
use crate::error::Error;

/// The manifest of the files written by the last export into a directory, so
/// that a re-export removes what is no longer part of it (a stale runit
/// `env/` file would otherwise still be loaded).
pub const MANIFEST: &str = ".procrun-export";

/// Writes `files` into `dir` so that nothing is half-written: every file is
/// written to a temporary name in its final directory, and only when all of
/// them were written are they renamed into place. Files listed in the
/// previous export's manifest but not in this one are then removed, with
/// the folders they leave empty. Returns the top-level folders that are no
/// longer exported but still hold other files (e.g. a runit service's logs).
pub fn write_all(dir: &Path, files: &[ExportFile]) -> Result<Vec<String>, Error> {
    let shown = dir.display().to_string();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create the output directory `{shown}`"), e))?;
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for (n, file) in files.iter().enumerate() {
            let target = dir.join(&file.path);
            if file.kind == FileKind::Dir {
                std::fs::create_dir_all(&target)
                    .map_err(|e| Error::io(format!("cannot create `{}`", target.display()), e))?;
                continue;
            }
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                return Err(Error::io(
                    format!("cannot replace `{}`", target.display()),
                    std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"),
                ));
            }
            let parent = target.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create `{}`", parent.display()), e))?;
            let temp = parent.join(format!(".procrun-tmp-{}-{n}", std::process::id()));
            write_one(&temp, file)
                .map_err(|e| Error::io(format!("cannot write into `{shown}`"), e))?;
            temps.push((temp, target));
        }
        let manifest: String = files
            .iter()
            .map(|f| format!("{}\n", manifest_entry(f)))
            .collect();
        let temp = dir.join(format!(".procrun-tmp-{}-manifest", std::process::id()));
        write_one(&temp, &ExportFile::file(MANIFEST, manifest))
            .map_err(|e| Error::io(format!("cannot write into `{shown}`"), e))?;
        temps.push((temp, dir.join(MANIFEST)));
        Ok(())
    })();
    if let Err(e) = result {
        for (temp, _) in &temps {
            let _ = std::fs::remove_file(temp);
        }
        return Err(e);
    }
    let previous = std::fs::read_to_string(dir.join(MANIFEST)).unwrap_or_default();
    for (temp, target) in &temps {
        if let Err(e) = std::fs::rename(temp, target) {
            for (temp, _) in &temps {
                let _ = std::fs::remove_file(temp);
            }
            return Err(Error::io(
                format!("cannot move `{}` into place", target.display()),
                e,
            ));
        }
    }
    let current: BTreeSet<String> = files.iter().map(manifest_entry).collect();
    // Only plain relative paths that an earlier export wrote, deepest first
    // so that a folder is emptied before it is removed.
    let mut stale: Vec<&str> = previous
        .lines()
        .filter(|l| !l.is_empty() && !current.contains(*l) && !l.starts_with('/'))
        .filter(|l| {
            l.trim_end_matches('/')
                .split('/')
                .all(|p| !p.is_empty() && p != "..")
        })
        .collect();
    stale.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    let mut tops: Vec<String> = Vec::new();
    for entry in stale {
        let path = entry.trim_end_matches('/');
        let _ = if entry.ends_with('/') {
            std::fs::remove_dir(dir.join(path))
        } else {
            std::fs::remove_file(dir.join(path))
        };
        // Folders it leaves empty go too (a runit service's env/).
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            if std::fs::remove_dir(dir.join(p)).is_err() {
                break;
            }
            parent = p.parent();
        }
        let top = path.split('/').next().unwrap_or(path);
        if top != path && !tops.iter().any(|t| t == top) {
            tops.push(top.to_owned());
        }
    }
    // A top-level folder that is no longer exported but still holds files
    // procrun did not write (runit's supervise/ and logs).
    Ok(tops
        .into_iter()
        .filter(|top| {
            !current
                .iter()
                .any(|c| c.split('/').next() == Some(top.as_str()))
                && dir.join(top).exists()
        })
        .collect())
}

/// A file's line in the manifest: its path, with a `/` for a folder.
fn manifest_entry(file: &ExportFile) -> String {
    match file.kind {
        FileKind::Dir => format!("{}/", file.path),
        _ => file.path.clone(),
    }
}

fn write_one(path: &Path, file: &ExportFile) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mode = match file.kind {
        FileKind::Executable => 0o755,
        FileKind::Private => 0o600,
        FileKind::File | FileKind::Dir => 0o644,
    };
    // A fresh file, never an existing one or a symlink planted there; the
    // umask narrows the mode, and nothing widens it afterwards.
    let _ = std::fs::remove_file(path);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    out.write_all(file.contents.as_bytes())?;
    out.sync_all()
}
