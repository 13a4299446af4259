//! Migrations are append-only: once one has landed, its text never changes, because a
//! database migrated with the old text refuses to start against the new one (sqlx compares
//! each applied migration's SHA-384 with the file's). `.ci/landed-migrations.sha384` lists
//! every migration's SHA-384 in `sha384sum` format; this test holds the files to it, and
//! `.ci/test` checks in git history that no line of that list was ever changed or removed.

use sha2::{Digest, Sha384};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_migration_is_listed_with_the_checksum_it_landed_with() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let list = std::fs::read_to_string(root.join(".ci/landed-migrations.sha384")).unwrap();
    let listed: BTreeMap<&str, &str> = list
        .lines()
        .map(|line| {
            let (sum, name) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("not a sha384sum line: {line:?}"));
            (name, sum)
        })
        .collect();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    assert!(files.len() >= 10, "the migrations directory was found");
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let sum = hex::encode(Sha384::digest(std::fs::read(path).unwrap()));
        match listed.get(name) {
            None => panic!(
                "{name} is not in .ci/landed-migrations.sha384: append `{sum}  {name}` when it lands"
            ),
            Some(want) => assert_eq!(
                *want, sum,
                "{name} changed after it landed: add a new migration instead of editing this one"
            ),
        }
    }
    for name in listed.keys() {
        assert!(
            files.iter().any(|p| p.file_name().unwrap() == *name),
            "{name} is listed as landed but its file is gone"
        );
    }
}

/// The list's checksums are the ones sqlx records in `_sqlx_migrations`, so an operator can
/// compare a database with it.
#[test]
fn the_listed_checksums_are_the_ones_sqlx_records() {
    for m in server::db::MIGRATOR.iter() {
        let list = include_str!("../../../.ci/landed-migrations.sha384");
        let line = format!("{}  {}_", hex::encode(&m.checksum), m.version);
        assert!(
            list.contains(&line),
            "migration {} ({})",
            m.version,
            m.description
        );
    }
}
