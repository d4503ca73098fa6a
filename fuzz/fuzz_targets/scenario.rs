//! libFuzzer target `scenario`: see `autoclose_tests::fuzz::scenario_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| autoclose_tests::fuzz::scenario_text(data));
