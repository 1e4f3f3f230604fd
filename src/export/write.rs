//! Puts an export's files in place so that nothing is ever half-written.
//!
//! 1. Stage: every file is written to a temporary name in its final folder
//!    (folders that do not exist yet are created and remembered).
//! 2. Keep: every file that will be replaced gets a hard link under a
//!    backup name, so that it can be put back.
//! 3. Swap: the temporary files are renamed over their targets. If one
//!    rename fails, those already done are undone from the backups (a
//!    rename within a folder that was just renamed into), so the previous
//!    export is what is left.
//! 4. Clean: the backups go, then what the previous export wrote and this
//!    one does not.
//!
//! On every error path the temporary files (which hold env values), the
//! backups and the folders this run created are removed. No path under the
//! output folder is followed through a symbolic link, for writes or for
//! removals: a link where a folder should be is an error, and a stale entry
//! behind one is left alone.
//!
//! Modes: files are created 0644, scripts 0755 and files that hold env
//! values 0600, all narrowed by the umask and never widened.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{ExportFile, FileKind};
use crate::error::Error;

/// The manifest of the files written by the last export into a directory, so
/// that a re-export removes what is no longer part of it (a stale runit
/// `env/` file would otherwise still be loaded).
pub const MANIFEST: &str = ".procrun-export";

/// The prefix of every temporary name (staged files and backups).
const TEMP_PREFIX: &str = ".procrun-tmp-";

/// Writes `files` into `dir` so that nothing is half-written (see the
/// module documentation). Files listed in the previous export's manifest
/// but not in this one are then removed, with the folders they leave
/// empty. Returns the top-level folders that are no longer exported but
/// still hold other files (e.g. a runit service's logs).
pub fn write_all(dir: &Path, files: &[ExportFile]) -> Result<Vec<String>, Error> {
    let shown = dir.display().to_string();
    let mut run = Run::default();
    if !dir.is_dir() {
        // Only the last component is remembered: a parent that had to be
        // created too stays (it is the user's path, and empty).
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create the output directory `{shown}`"), e))?;
        run.created_dirs.push(dir.to_path_buf());
    }
    let previous = std::fs::read_to_string(dir.join(MANIFEST)).unwrap_or_default();
    match run.stage_and_swap(dir, files) {
        Ok(()) => {
            run.remove_backups();
        }
        Err(e) => {
            run.abort();
            return Err(e);
        }
    }
    let current: BTreeSet<String> = files.iter().map(manifest_entry).collect();
    Ok(remove_stale(dir, &previous, &current))
}

/// What one [`write_all`] did so far, to undo it.
#[derive(Debug, Default)]
struct Run {
    /// Staged files and their targets.
    staged: Vec<(PathBuf, PathBuf)>,
    /// Backups (hard links) of replaced files and the file they keep.
    backups: Vec<(PathBuf, PathBuf)>,
    /// Targets renamed into place so far (index into `staged`).
    swapped: usize,
    /// Folders this run created, outermost first.
    created_dirs: Vec<PathBuf>,
}

impl Run {
    fn stage_and_swap(&mut self, dir: &Path, files: &[ExportFile]) -> Result<(), Error> {
        let shown = dir.display().to_string();
        let id = std::process::id();
        for (n, file) in files.iter().enumerate() {
            let target = dir.join(&file.path);
            self.make_dirs(dir, &file.path, file.kind == FileKind::Dir)?;
            if file.kind == FileKind::Dir {
                continue;
            }
            let meta = std::fs::symlink_metadata(&target);
            if meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return Err(Error::io(
                    format!("cannot replace `{}`", target.display()),
                    std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"),
                ));
            }
            let parent = target.parent().unwrap_or(dir);
            let temp = parent.join(format!("{TEMP_PREFIX}{id}-{n}"));
            // Remembered before it exists: a write that fails half-way
            // (ENOSPC) still leaves a file to remove.
            self.staged.push((temp.clone(), target));
            write_one(&temp, file).map_err(|e| {
                Error::io(format!("cannot write `{}` into `{shown}`", file.path), e)
            })?;
        }
        let manifest: String = files
            .iter()
            .map(|f| format!("{}\n", manifest_entry(f)))
            .collect();
        let temp = dir.join(format!("{TEMP_PREFIX}{id}-manifest"));
        self.staged.push((temp.clone(), dir.join(MANIFEST)));
        write_one(&temp, &ExportFile::file(MANIFEST, manifest))
            .map_err(|e| Error::io(format!("cannot write into `{shown}`"), e))?;

        for (n, (_, target)) in self.staged.iter().enumerate() {
            if std::fs::symlink_metadata(target).is_err() {
                continue;
            }
            let parent = target.parent().unwrap_or(dir);
            let backup = parent.join(format!("{TEMP_PREFIX}{id}-old-{n}"));
            std::fs::hard_link(target, &backup)
                .map_err(|e| Error::io(format!("cannot replace `{}`", target.display()), e))?;
            self.backups.push((backup, target.clone()));
        }

        for (temp, target) in &self.staged {
            std::fs::rename(temp, target).map_err(|e| {
                Error::io(format!("cannot move `{}` into place", target.display()), e)
            })?;
            self.swapped += 1;
        }
        Ok(())
    }

    /// Creates the folders of `path` under `dir` that are missing; refuses
    /// one that is a symbolic link or not a folder. With `whole`, the last
    /// component is a folder too.
    fn make_dirs(&mut self, dir: &Path, path: &str, whole: bool) -> Result<(), Error> {
        let parts: Vec<&str> = path.split('/').collect();
        let folders = if whole {
            &parts[..]
        } else {
            &parts[..parts.len().saturating_sub(1)]
        };
        let mut at = dir.to_path_buf();
        for part in folders {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::io(
                        format!("cannot write into `{}`", at.display()),
                        std::io::Error::other(
                            "it is a symbolic link, and procrun does not write through links (remove it)",
                        ),
                    ));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::io(
                        format!("cannot create the folder `{}`", at.display()),
                        std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            "a file is in the way",
                        ),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&at)
                        .map_err(|e| Error::io(format!("cannot create `{}`", at.display()), e))?;
                    self.created_dirs.push(at.clone());
                }
                Err(e) => {
                    return Err(Error::io(format!("cannot read `{}`", at.display()), e));
                }
            }
        }
        Ok(())
    }

    /// Undoes everything: the renames done (from the backups, or by
    /// removing a file that did not exist before), the staged files, the
    /// backups and the folders created.
    fn abort(&mut self) {
        for (_, target) in self.staged[..self.swapped].iter().rev() {
            match self.backups.iter().find(|(_, t)| t == target) {
                Some((backup, _)) => {
                    let _ = std::fs::rename(backup, target);
                }
                None => {
                    let _ = std::fs::remove_file(target);
                }
            }
        }
        for (temp, _) in &self.staged[self.swapped..] {
            let _ = std::fs::remove_file(temp);
        }
        self.remove_backups();
        for folder in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(folder);
        }
    }

    fn remove_backups(&mut self) {
        for (backup, _) in self.backups.drain(..) {
            let _ = std::fs::remove_file(backup);
        }
    }
}

/// Removes what the previous manifest lists and `current` does not: only
/// plain relative paths, none reached through a symbolic link, deepest
/// first so that a folder is emptied before it is removed. Returns the
/// top-level folders no longer exported that still hold other files.
fn remove_stale(dir: &Path, previous: &str, current: &BTreeSet<String>) -> Vec<String> {
    let mut stale: Vec<&str> = previous
        .lines()
        .filter(|l| !l.is_empty() && !current.contains(*l) && !l.starts_with('/'))
        .filter(|l| {
            l.trim_end_matches('/')
                .split('/')
                .all(|p| !p.is_empty() && p != ".." && p != ".")
        })
        .collect();
    stale.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    let mut tops: Vec<String> = Vec::new();
    for entry in stale {
        let path = entry.trim_end_matches('/');
        if through_link(dir, path) {
            continue;
        }
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
    tops.into_iter()
        .filter(|top| {
            !current
                .iter()
                .any(|c| c.split('/').next() == Some(top.as_str()))
                && dir.join(top).exists()
        })
        .collect()
}

/// Whether a folder on the way to `path` under `dir` is a symbolic link
/// (or cannot be read): removing there could remove outside `dir`.
fn through_link(dir: &Path, path: &str) -> bool {
    let mut at = dir.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            _ => return true,
        }
    }
    false
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
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)?;
    out.write_all(file.contents.as_bytes())?;
    out.sync_all()
}
