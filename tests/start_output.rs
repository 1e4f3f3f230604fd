//! `procrun start`: what reaches stdout.

mod support;

use std::collections::HashMap;

use support::{Test, free_port};

/// Runs `start -p FREE_PORT ARGS…` on `procfile` until it exits by itself;
/// returns (code, stdout lines).
fn run_to_end(procfile: &str, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Test::new()
        .procfile(procfile)
        .args(["start", "-p", &free_port().to_string()])
        .args(args)
        .run();
    (out.code(), out.lines)
}

/// Lines of `name` with the prefix removed.
fn texts<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    let head = format!("{name} ");
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix(&head)?;
            let bar = rest.find("| ")?;
            rest[..bar].trim().is_empty().then(|| &rest[bar + 2..])
        })
        .collect()
}

#[test]
fn prefix_has_time_and_aligned_names() {
    let (code, lines) = run_to_end("web: echo hello\nbackground_job: sleep 30\n", &[]);
    assert_eq!(code, Some(0));
    // "background_job.1" is the longest name: 16 characters.
    let hello = lines
        .iter()
        .find(|l| l.ends_with("| hello"))
        .expect("hello line");
    let (time, rest) = hello.split_at(9);
    assert!(
        time.as_bytes()[..8]
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 2 || i == 5 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }),
        "{hello:?}"
    );
    assert_eq!(rest, "web.1            | hello");
    assert!(
        lines
            .iter()
            .any(|l| l[9..].starts_with("system           | web.1 exited with code 0")),
        "{lines:#?}"
    );
    for l in &lines {
        assert_eq!(l.find('|'), Some(9 + 17), "misaligned: {l:?}");
    }
}

#[test]
fn no_timestamp_drops_the_time() {
    let (_, lines) = run_to_end("web: echo hello\n", &["--no-timestamp"]);
    assert!(lines.contains(&"web.1  | hello".to_owned()), "{lines:#?}");
    assert!(
        lines[0].starts_with("system | web.1 started with pid "),
        "{lines:#?}"
    );
}

#[test]
fn stderr_is_merged() {
    // stdout and stderr are two pipes, read independently: each write
    // waits until the test has seen the one before it, so the order on
    // procrun's stdout is the order of the writes.
    let mut r = Test::new()
        .procfile(
            "web: echo out; until [ -e go1 ]; do sleep 0.01; done; echo err >&2; until [ -e go2 ]; do sleep 0.01; done; echo out2\n",
        )
        .start(&[]);
    r.wait_for("web.1  | out");
    std::fs::write(r.join("go1"), "").expect("go1");
    r.wait_for("web.1  | err");
    std::fs::write(r.join("go2"), "").expect("go2");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.transcript());
    assert_eq!(texts(&r.lines(), "web.1"), ["out", "err", "out2"]);
    assert_eq!(r.stderr(), "", "a child's stderr goes to procrun's stdout");
}

#[test]
fn unterminated_last_line_is_printed_before_the_exit() {
    let (_, lines) = run_to_end("web: printf 'first\\nno newline'\n", &["--no-timestamp"]);
    let last = lines
        .iter()
        .position(|l| l == "web.1  | no newline")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let exit = lines
        .iter()
        .position(|l| l.contains("web.1 exited with code 0"))
        .expect("exit line");
    assert!(last < exit, "{lines:#?}");
}

#[test]
fn a_one_mebibyte_line_stays_whole_and_longer_ones_are_marked() {
    let (_, lines) = run_to_end(
        "web: head -c 1048576 /dev/zero | tr '\\0' x; echo; head -c 1048580 /dev/zero | tr '\\0' y; echo; echo after\n",
        &["--no-timestamp"],
    );
    let got = texts(&lines, "web.1");
    assert_eq!(
        got.len(),
        4,
        "lines: {:?}",
        got.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert_eq!(got[0].len(), 1 << 20);
    assert!(got[0].bytes().all(|b| b == b'x'));
    let mark = " [procrun: line longer than 1 MiB, continued on the next line]";
    assert_eq!(got[1], format!("{}{mark}", "y".repeat(1 << 20)));
    assert_eq!(got[2], "yyyy");
    assert_eq!(got[3], "after");
}

#[test]
fn invalid_utf8_is_passed_through_lossily() {
    let (_, lines) = run_to_end(
        "web: printf 'bad \\377 byte\\n\\303\\251t\\303\\251\\n'\n",
        &["--no-timestamp"],
    );
    assert_eq!(texts(&lines, "web.1"), ["bad \u{fffd} byte", "été"]);
}

#[test]
fn output_is_live() {
    let mut r = Test::new()
        .procfile("web: echo first; exec sleep 30\n")
        .args(["start", "-p", &free_port().to_string()])
        .spawn();
    // Seen while the process is still running (it sleeps 30 s).
    r.wait_for("web.1  | first");
    r.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130));
}

#[test]
fn port_and_ps_per_instance() {
    let base = free_port();
    let mut r = Test::new()
        .procfile(
            "web: echo \"ps=$PS port=$PORT\"; exec sleep 30\nworker: echo \"ps=$PS port=$PORT\"; exec sleep 30\n",
        )
        .args([
            "start",
            "-p",
            &base.to_string(),
            "-m",
            "web=2,worker=1",
            "--no-timestamp",
        ])
        .spawn();
    for want in [
        format!("web.1    | ps=web.1 port={base}"),
        format!("web.2    | ps=web.2 port={}", base + 1),
        format!("worker.1 | ps=worker.1 port={}", base + 100),
    ] {
        r.wait_for(&want);
    }
    r.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    assert!(
        r.transcript().contains("worker.1 started with pid "),
        "{}",
        r.transcript()
    );
}

#[test]
fn a_port_in_use_gives_a_warning_not_a_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let mut r = Test::new()
        .procfile("web: echo ran\n")
        .args(["start", "-p", &port, "--no-timestamp"])
        .spawn();
    assert_eq!(r.wait_exit(), Some(0));
    let t = r.transcript();
    assert!(
        t.contains(&format!("warning: PORT {port} of web.1 is already in use")),
        "{t}"
    );
    assert!(t.contains("web.1  | ran"), "{t}");
}

/// 20 instances write 3000 self-checking lines each, half of them on
/// stderr, as fast as they can: every line must arrive exactly once,
/// whole, in order per instance.
#[test]
fn every_line_exactly_once_with_20_writers() {
    const N: u32 = 3000;
    let script = format!(
        "awk -v ps=\"$PS\" 'BEGIN {{ for (i = 1; i <= {N}; i++) {{ line = sprintf(\"%s %d %s\", ps, i, sprintf(\"%0*d\", 40 + i % 50, i)); if (i % 2) print line; else print line > \"/dev/stderr\" }} }}'; exec sleep 60"
    );
    let mut r = Test::new()
        .procfile(&format!("w: {script}\n"))
        .start(&["-m", "w=20"]);
    // Wait for each instance's last line, then stop.
    for i in 1..=20 {
        let name = format!("w.{i}");
        let last = format!("{name:<6} | {name} {N} ");
        r.wait_for_line(|l| l.starts_with(&last), support::WAIT);
    }
    r.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130));

    let mut next: HashMap<String, u32> = HashMap::new();
    for line in r.lines().iter().filter(|l| !l.starts_with("system")) {
        let (prefix, text) = line.split_once(" | ").expect("prefixed");
        let mut words = text.split(' ');
        let (ps, seq, payload) = (
            words.next().expect("ps"),
            words
                .next()
                .expect("seq")
                .parse::<u32>()
                .expect("seq number"),
            words.next().expect("payload"),
        );
        assert!(words.next().is_none(), "interleaved: {line:?}");
        assert_eq!(prefix.trim(), ps, "line under the wrong name: {line:?}");
        assert_eq!(
            payload.len() as u32,
            (40 + seq % 50).max(1),
            "split: {line:?}"
        );
        assert_eq!(payload.trim_start_matches('0'), seq.to_string(), "{line:?}");
        // Order holds per stream (odd numbers on stdout, even ones on
        // stderr); awk buffers stdout but not stderr, so a line of one may
        // be written in the middle of a line of the other: separate pipes
        // must keep both whole.
        let stream = if seq % 2 == 1 { "out" } else { "err" };
        let expected = next
            .entry(format!("{ps} {stream}"))
            .or_insert(if seq % 2 == 1 { 1 } else { 2 });
        assert_eq!(seq, *expected, "lost, duplicated or reordered: {line:?}");
        *expected += 2;
    }
    assert_eq!(next.len(), 40);
    assert!(
        next.values().all(|n| *n == N + 1 || *n == N + 2),
        "{next:?}"
    );
}

/// A reader that does not keep up slows the writers down instead of making
/// procrun buffer: while the test stops reading, a writer that could
/// produce gigabytes per second ends up blocked on a full pipe, having got
/// only a few MiB past procrun, whose memory stays flat.
#[cfg(target_os = "linux")]
#[test]
fn a_slow_reader_applies_back_pressure() {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::time::{Duration, Instant};

    /// What procrun may hold with its own buffers full (32 chunks of at
    /// most 64 KiB, a 1 MiB line, a 128 KiB batch), with room to spare.
    const MAX_WRITTEN: u64 = 16 << 20;
    const MAX_RSS_KIB: u64 = 48 << 10;

    let mut r = Test::new()
        .procfile(&format!("w: echo first; exec yes {}\n", "x".repeat(100)))
        .start(&[]);
    let writer = r.pid_of("w.1"); // `exec`: the shell becomes `yes`
    r.wait_for("w.1    | first");
    r.pause_stdout();

    let procrun = r.pid();
    let rss_kib = || {
        let status = std::fs::read_to_string(format!("/proc/{procrun}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .expect("VmRSS")
    };
    let written = || {
        let io = std::fs::read_to_string(format!("/proc/{writer}/io")).unwrap_or_default();
        io.lines()
            .find_map(|l| l.strip_prefix("wchar: "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("wchar")
    };
    // The writer's stdout: the pipe procrun reads it from.
    let pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{writer}/fd/1"))
        .expect("open the writer's pipe");
    // SAFETY: F_GETPIPE_SZ and FIONREAD on an open pipe descriptor, the
    // latter writing one int.
    let capacity = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(capacity > 0, "F_GETPIPE_SZ");
    let queued = || {
        let mut n: libc::c_int = 0;
        let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert_eq!(rc, 0, "FIONREAD");
        n
    };

    // Event: the writer is blocked on its full pipe (no progress over a few
    // looks in a row). Fails as soon as procrun takes more than its buffers
    // can hold, or grows.
    let start = written();
    let deadline = Instant::now() + support::WAIT;
    let (mut last, mut still, mut peak) = (start, 0, 0);
    while still < 5 {
        assert!(Instant::now() < deadline, "the writer never blocked");
        std::thread::sleep(Duration::from_millis(10));
        let (now, rss) = (written(), rss_kib());
        peak = peak.max(rss);
        assert!(
            now - start < MAX_WRITTEN,
            "procrun took {} bytes while nobody read its output",
            now - start
        );
        assert!(rss < MAX_RSS_KIB, "procrun grew to {rss} KiB");
        still = if now == last && queued() >= capacity - 4096 {
            still + 1
        } else {
            0
        };
        last = now;
    }
    drop(pipe);
    r.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "peak {peak} KiB");
}
