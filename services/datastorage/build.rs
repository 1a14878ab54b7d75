// The profile the service embeds, as `cargo xtask sync-migrations` generated it from
// migrations/profiles.toml.
#[allow(dead_code, unused_macros, unused_imports)]
mod profile {
    include!("src/profile.rs");
}

// Rebuild when a migration is added to or removed from the embedded profile.
fn main() {
    println!("cargo:rerun-if-changed=src/profile.rs");
    println!("cargo:rerun-if-changed=../../{}", profile::DIR);
}
