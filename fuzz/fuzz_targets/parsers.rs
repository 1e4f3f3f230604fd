//! Feeds arbitrary bytes to every parser: none may panic, and every
//! diagnostic must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = procrun::procfile::decode_utf8("Procfile", data);
        return;
    };
    match procrun::procfile::parse(Path::new("Procfile"), text) {
        Ok(p) => {
            let again = procrun::procfile::parse(Path::new("Procfile"), &procrun::procfile::render(&p.entries))
                .expect("a rendered Procfile parses");
            assert_eq!(again.entries.len(), p.entries.len());
        }
        Err(errors) => errors.iter().for_each(|e| drop(e.render(true))),
    }
    if let Err(errors) = procrun::env::parse(".env", text, &|_| None) {
        errors.iter().for_each(|e| drop(e.render(false)));
    }
    if let Err(errors) = procrun::formation::parse(text) {
        errors.iter().for_each(|e| drop(e.render(false)));
    }
});
