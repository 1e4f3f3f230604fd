//! Puts an export's files in place so that nothing is ever half-written.
//!
//! 0. Check and sweep: a file that another app's export wrote (its
//!    manifest lists it) is never overwritten: the export is refused. What
//!    a killed export left (temporary files and backups of a process that
//!    is no longer running, found by their names) is removed.
//! 1. Stage: every file is written to a temporary name in its final folder
//!    (folders that do not exist yet are created and remembered).
//! 2. Keep: every file that will be replaced gets a hard link under a
//!    backup name, so that it can be put back.
//! 3. Swap: the temporary files are renamed over their targets. If one
//!    rename fails, those already done are undone from the backups (a
//!    rename within a folder that was just renamed into), so the previous
//!    export is what is left.
//! 4. Clean: the backups go, then what the app's previous export wrote and
//!    this one does not (never what another app's manifest lists).
//!
//! On every error path the temporary files (which hold env values), the
//! backups and the folders this run created are removed; only a SIGKILL
//! (or a crash) can leave them, for the next export's sweep. No path under
//! the output folder is followed through a symbolic link, for writes or for
//! removals: a link where a folder should be is an error, and a stale entry
//! behind one is left alone.
//!
//! Each app has its own manifest (`.procrun-export-APP`), so that apps can
//! share a folder (`~/.config/systemd/user`, `/etc/systemd/system`).
//!
//! Modes: files are created 0644, scripts 0755 and files that hold env
//! values 0600, all narrowed by the umask and never widened.
//!
//! Over 400 lines because the steps share one run's record of what it did,
//! which every error path undoes; its unit tests are at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{ExportFile, FileKind};
use crate::diagnostic::Diagnostic;
use crate::error::Error;

/// The start of the name of each app's manifest, which lists the files
/// that app's last export wrote into a directory, so that a re-export
/// removes what is no longer part of it (a stale runit `env/` file would
/// otherwise still be loaded) and another app's export never touches them.
pub const MANIFEST_PREFIX: &str = ".procrun-export-";

/// The name of `app`'s manifest.
pub fn manifest_name(app: &str) -> String {
    format!("{MANIFEST_PREFIX}{app}")
}

/// The prefix of every temporary name (staged files and backups).
const TEMP_PREFIX: &str = ".procrun-tmp-";

/// How deep under the output folder the sweep looks: exported files are
/// at most three levels down (runit's `APP-web-1/log/run`).
const SWEEP_DEPTH: usize = 4;

/// What [`write_all`] did besides writing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// What the app's previous export wrote and this one does not, removed
    /// (files, and folders with a trailing `/`), relative to the folder.
    pub removed: Vec<String>,
    /// Top-level folders that are no longer exported but still hold files
    /// procrun did not write (e.g. a runit service's logs).
    pub kept: Vec<String>,
}

/// Writes `files`, `app`'s export, into `dir` so that nothing is
/// half-written (see the module documentation). Files listed in `app`'s
/// previous manifest but not in this export are then removed, with the
/// folders they leave empty.
pub fn write_all(dir: &Path, app: &str, files: &[ExportFile]) -> Result<Written, Error> {
    let shown = dir.display().to_string();
    let mut run = Run::default();
    let others = if dir.is_dir() {
        let others = other_manifests(dir, app);
        refuse_clashes(dir, files, &others)?;
        sweep(dir, 0);
        others
    } else {
        // Only the last component is remembered: a parent that had to be
        // created too stays (it is the user's path, and empty).
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create the output directory `{shown}`"), e))?;
        run.created_dirs.push(dir.to_path_buf());
        BTreeMap::new()
    };
    let manifest = manifest_name(app);
    let previous = std::fs::read_to_string(dir.join(&manifest)).unwrap_or_default();
    match run.stage_and_swap(dir, &manifest, files) {
        Ok(()) => {
            run.remove_backups();
        }
        Err(e) => {
            run.abort();
            return Err(e);
        }
    }
    let current: BTreeSet<String> = files.iter().map(manifest_entry).collect();
    Ok(remove_stale(dir, &previous, &current, &others))
}

/// The entries of every other app's manifest in `dir`, with the app.
fn other_manifests(dir: &Path, app: &str) -> BTreeMap<String, String> {
    let mut owned = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return owned;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(other) = name.to_str().and_then(|n| n.strip_prefix(MANIFEST_PREFIX)) else {
            continue;
        };
        // A link is not a manifest procrun wrote.
        if other == app || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            owned
                .entry(line.to_owned())
                .or_insert_with(|| other.to_owned());
        }
    }
    owned
}

/// Refuses an export that would overwrite a file another app's export
/// wrote (folders may be shared: `log/`).
fn refuse_clashes(
    dir: &Path,
    files: &[ExportFile],
    others: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let clashes: Vec<Diagnostic> = files
        .iter()
        .filter(|f| f.kind != FileKind::Dir)
        .filter_map(|f| {
            let owner = others.get(&f.path)?;
            Some(
                Diagnostic::error(format!(
                    "`{}` belongs to the export of app `{owner}` ({} lists it); exporting another app would overwrite it",
                    dir.join(&f.path).display(),
                    manifest_name(owner),
                ))
                .help(format!(
                    "export this app into a folder of its own, or re-export `{owner}` with --app {owner}"
                )),
            )
        })
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes.into())
    }
}

/// Removes, under `folder`, the temporary files and backups of exports
/// that are no longer running (a SIGKILL leaves them, holding env values):
/// only regular files with procrun's temporary names, never through a
/// symbolic link.
fn sweep(folder: &Path, depth: usize) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth + 1 < SWEEP_DEPTH {
            sweep(&entry.path(), depth + 1);
        } else if kind.is_file()
            && let Some(pid) = entry.file_name().to_str().and_then(temp_owner)
            && !running(pid)
        {
            tracing::debug!(
                "removing `{}`, left by export {pid}",
                entry.path().display()
            );
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid of the export that named a file `name`, if it is one of the
/// names [`Run`] gives: `.procrun-tmp-PID-N`, `-PID-old-N`, `-PID-manifest`.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, what) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ours = what == "manifest" || digits(what) || what.strip_prefix("old-").is_some_and(digits);
    (digits(pid) && ours).then(|| pid.parse().ok()).flatten()
}

/// Whether process `pid` exists (one that cannot be signalled exists too).
fn running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid == std::process::id() as i32
        || !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
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
    fn stage_and_swap(
        &mut self,
        dir: &Path,
        manifest_name: &str,
        files: &[ExportFile],
    ) -> Result<(), Error> {
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
        self.staged.push((temp.clone(), dir.join(manifest_name)));
        write_one(&temp, &ExportFile::file(manifest_name, manifest))
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

/// Removes what the previous manifest lists and neither `current` nor
/// another app's manifest (`others`) does: only plain relative paths, none
/// reached through a symbolic link, deepest first so that a folder is
/// emptied before it is removed.
fn remove_stale(
    dir: &Path,
    previous: &str,
    current: &BTreeSet<String>,
    others: &BTreeMap<String, String>,
) -> Written {
    let mut stale: Vec<&str> = previous
        .lines()
        .filter(|l| !l.is_empty() && !current.contains(*l) && !l.starts_with('/'))
        .filter(|l| !others.contains_key(*l))
        .filter(|l| {
            l.trim_end_matches('/')
                .split('/')
                .all(|p| !p.is_empty() && p != ".." && p != ".")
        })
        .collect();
    stale.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    let mut written = Written::default();
    let mut tops: Vec<String> = Vec::new();
    for entry in stale {
        let path = entry.trim_end_matches('/');
        if through_link(dir, path) {
            continue;
        }
        let removed = if entry.ends_with('/') {
            std::fs::remove_dir(dir.join(path))
        } else {
            std::fs::remove_file(dir.join(path))
        };
        if removed.is_ok() {
            written.removed.push(entry.to_owned());
        }
        // Folders it leaves empty go too (a runit service's env/), unless
        // another app's export uses them.
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            let folder = format!("{}/", p.display());
            if others.contains_key(&folder) || current.contains(&folder) {
                break;
            }
            if std::fs::remove_dir(dir.join(p)).is_err() {
                break;
            }
            if !written.removed.contains(&folder) {
                written.removed.push(folder);
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
    written.kept = tops
        .into_iter()
        .filter(|top| {
            !current
                .iter()
                .any(|c| c.split('/').next() == Some(top.as_str()))
                && dir.join(top).exists()
        })
        .collect();
    written.removed.sort();
    written
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_an_export_gives_have_an_owner() {
        assert_eq!(temp_owner(".procrun-tmp-42-0"), Some(42));
        assert_eq!(temp_owner(".procrun-tmp-42-17"), Some(42));
        assert_eq!(temp_owner(".procrun-tmp-42-old-3"), Some(42));
        assert_eq!(temp_owner(".procrun-tmp-42-manifest"), Some(42));
        for name in [
            ".procrun-tmp-notes",
            ".procrun-tmp-42",
            ".procrun-tmp-42-",
            ".procrun-tmp--0",
            ".procrun-tmp-42-old-",
            ".procrun-tmp-42-0.bak",
            ".procrun-tmp-4x-0",
            "my.procrun-tmp-42-0",
            ".procrun-tmp-99999999999999999999-0",
        ] {
            assert_eq!(temp_owner(name), None, "{name}");
        }
    }

    #[test]
    fn a_folder_another_app_uses_is_never_removed_as_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("log")).expect("mkdir");
        std::fs::write(dir.path().join("one.conf"), "x").expect("write");
        let previous = "one.conf\nlog/\n";
        let others = BTreeMap::from([("log/".to_owned(), "two".to_owned())]);
        let written = remove_stale(dir.path(), previous, &BTreeSet::new(), &others);
        assert_eq!(written.removed, vec!["one.conf".to_owned()]);
        assert!(dir.path().join("log").is_dir());
    }
}
