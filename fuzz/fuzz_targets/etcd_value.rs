//! An etcd key and value (split at the first 0x00) through the key mapping, the value
//! decoder and the answer pipeline (see `srvd::fuzz::etcd_value`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, value) = srvd::fuzz::split_etcd_input(data);
    srvd::fuzz::etcd_value(key, value);
});
