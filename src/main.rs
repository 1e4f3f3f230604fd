//! The `procrun` binary: everything happens in the library.

fn main() -> std::process::ExitCode {
    let code = procrun::main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
