//! libFuzzer target `ingest`: see `autoclose_tests::fuzz::ingest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| autoclose_tests::fuzz::ingest(data));
