//! The control socket against careless and hostile use from outside: a
//! `--socket` that names something else, and clients that connect and
//! never go away. Real `start`s, raw connections; every wait is bounded.

mod support;

use nix::sys::signal::Signal;
use support::Test;

const UP: &str = "web: echo up; exec sleep 60\n";

/// A `start` refused for its `--socket` leaves nothing behind and
/// changes nothing that was there: not the file the path names, not a
/// file of the user's that happens to be at `PATH.lock`, not a symlink.
#[test]
fn a_refused_socket_path_leaves_and_clobbers_nothing() {
    let t = Test::new().procfile(UP);
    let dir = t.path().to_owned();
    let refused = |socket: &std::path::Path| {
        let out = Test::in_dir(&dir)
            .args(["--socket", socket.to_str().expect("utf-8"), "start"])
            .run();
        assert_eq!(out.code(), Some(2), "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "nothing started: {}", out.stdout);
        out.stderr
    };
    let lock_of = |p: &std::path::Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(".lock");
        std::path::PathBuf::from(s)
    };

    // A regular file, a directory, a symlink at the socket's path.
    let file = dir.join("notes.txt");
    std::fs::write(&file, "mine").expect("written");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).expect("a dir");
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&file, &link).expect("a symlink");
    for path in [&file, &sub, &link] {
        let err = refused(path);
        assert!(err.contains("is not a socket"), "{err}");
        assert!(
            !lock_of(path).exists(),
            "a refused start left {}",
            lock_of(path).display()
        );
    }
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "mine");
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));

    // A file of the user's where the lock would go (`--socket Cargo`
    // names `Cargo.lock`): neither overwritten nor removed.
    let socket = dir.join("Cargo");
    let lock = dir.join("Cargo.lock");
    std::fs::write(&lock, "# a file that is not procrun's\n").expect("written");
    let err = refused(&socket);
    assert!(err.contains("Cargo.lock"), "{err}");
    assert!(err.contains("not procrun's lock"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("kept"),
        "# a file that is not procrun's\n"
    );
    assert!(!socket.exists(), "no socket bound");
}

/// A stale lock a killed procrun left (its holder record, or nothing yet
/// written) is still taken, and removed at the end.
#[test]
fn a_stale_lock_is_taken_and_removed() {
    let t = Test::new().procfile(UP);
    let dir = t.path().to_owned();
    let socket = dir.join("s.sock");
    let lock = dir.join("s.sock.lock");
    for stale in [
        "",
        r#"{"pid":1,"root":"/x","socket":"/x/s.sock","started_at":"2020-01-01T00:00:00Z","version":"0.0.1"}"#,
    ] {
        std::fs::write(&lock, stale).expect("written");
        let mut r = Test::in_dir(&dir)
            .args(["--socket", socket.to_str().expect("utf-8")])
            .start(&[]);
        r.wait_for("web.1  | up");
        r.signal(Signal::SIGTERM);
        assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
        assert!(!lock.exists() && !socket.exists());
    }
}
