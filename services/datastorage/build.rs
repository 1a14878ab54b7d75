// Rebuild when a migration is added to or removed from the embedded profile.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations-v1.0");
}
