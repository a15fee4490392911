// `sqlx::migrate!` embeds the migration files at compile time; without this, editing or adding
// one would not rebuild the crate and the binary would carry the old set.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
