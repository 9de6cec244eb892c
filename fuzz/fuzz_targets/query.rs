//! A raw DNS message through the whole answer pipeline (see `srvd::fuzz::query`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    srvd::fuzz::query(data);
});
