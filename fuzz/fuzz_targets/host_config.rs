//! libFuzzer target `host_config`: see `autoclose_tests::fuzz::host_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| autoclose_tests::fuzz::host_config(data));
