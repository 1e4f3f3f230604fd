//! The example app of the quick start runs under `procrun start`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use nix::sys::signal::Signal;
use support::{Test, free_port};

#[test]
fn the_example_app_runs_answers_and_stops_on_ctrl_c() {
    if std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("python3 is not installed: skipped");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let port = free_port().to_string();
    let mut r = Test::in_dir(root)
        .args([
            "start",
            "-f",
            "Procfile.example",
            "-e",
            ".env.example",
            "-p",
            &port,
            "--no-timestamp",
        ])
        .spawn();
    r.wait_for(&format!("web.1    | listening on http://127.0.0.1:{port}"));
    r.wait_for("worker.1 | processed job 1 from queue default");
    r.wait_for("clock.1  | tick 1");

    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port")))
        .expect("connect to web.1");
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    assert!(
        response.contains("hello, twelve-factor world from web.1"),
        "{response}"
    );
    r.wait_for("web.1    | 127.0.0.1 \"GET / HTTP/1.0\" 200");

    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    let t = r.transcript();
    assert!(t.contains("web.1 exited with code 0"), "{t}");
    r.assert_no_leftovers();
    assert!(t.contains("worker.1 exited with code 0"), "{t}");
    assert!(t.contains("worker.1 | worker finished its last job"), "{t}");
}
