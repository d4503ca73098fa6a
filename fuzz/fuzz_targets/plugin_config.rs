//! libFuzzer target `plugin_config`: see `autoclose_tests::fuzz::plugin_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| autoclose_tests::fuzz::plugin_config(data));
