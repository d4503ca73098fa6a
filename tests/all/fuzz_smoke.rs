//! The fuzz targets on every `cargo test`: each file of the checked-in corpus
//! (`fuzz/corpus/<target>/`, seeds and every crash ever found), then a bounded run of
//! deterministic mutations of them. Long campaigns run the same targets under
//! libFuzzer with `cargo fuzz` (see docs/behaviour.md, "Fuzzing").

use std::path::PathBuf;

use autoclose::generate::Rng;
use autoclose_tests::fuzz::TARGETS;

/// Mutated inputs per target.
const MUTATIONS: usize = 1_500;

/// One mutation of `input`: a flipped byte, an interesting byte, a cut, a duplicated
/// or deleted range, or a splice with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let byte = *b"{}[]\":,\\0-9e\xff\x00 "
                    .get(rng.below(17))
                    .unwrap_or(&b'x');
                out.insert(at, byte);
            }
            2 => out.truncate(at),
            3 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                let copy = out[at.min(end)..end].to_vec();
                out.splice(at..at, copy);
            }
            4 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            _ => {
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    assert!(!inputs.is_empty(), "{}: no seeds", dir.display());
    inputs
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        for seed in &seeds {
            target(seed);
        }
        let mut rng = Rng(0x5eed ^ name.len() as u64);
        for i in 0..MUTATIONS {
            let input = &seeds[i % seeds.len()];
            let other = &seeds[rng.below(seeds.len())];
            let mutated = mutate(&mut rng, input, other);
            target(&mutated);
        }
    }
}
