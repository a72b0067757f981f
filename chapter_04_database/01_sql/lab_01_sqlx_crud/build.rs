//! Tells cargo when this lab must compile again for the sake of sqlx's macros, which cannot say
//! it themselves on stable Rust: `sqlx::migrate!` embeds `migrations/`, and the query macros
//! read `DATABASE_URL` (check online), `SQLX_OFFLINE` (use the offline data), `SQLX_OFFLINE_DIR`
//! (save the offline data there) and the offline data in `.sqlx/`. Without these lines a build
//! made against a database would be reused as is by an offline build, proving nothing about
//! `.sqlx/`.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-changed=.sqlx");
    for var in ["DATABASE_URL", "SQLX_OFFLINE", "SQLX_OFFLINE_DIR"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
}
