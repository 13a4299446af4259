//! The migrations are embedded in the binary (`sqlx::migrate!`), which cargo cannot see:
//! without this, a new migration file would not rebuild the server crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
