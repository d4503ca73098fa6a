//! libFuzzer target `hooks`: see `autoclose_tests::fuzz::hooks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| autoclose_tests::fuzz::hooks(data));
