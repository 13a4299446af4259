//! Administration from the command line, for operations and scripts: create an
//! organization, a user (password read from standard input) or an API key (printed once).
//! Each command prints what it made; its flags are defined and checked in [`crate::cli`].

use crate::cli::{CreateKey, CreateOrg, CreateUser};
use app::account::Scope;
use app::services::{accounts, api_keys, error::ServiceError, mail::PublicUrl};
use sqlx::PgPool;
use std::io::BufRead;

fn explain(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// `server create-org`.
pub async fn create_org(db: &PgPool, a: &CreateOrg) -> Result<(), String> {
    let kind = a.kind.as_str();
    let id = accounts::create_organization(db, &a.name, kind)
        .await
        .map_err(explain)?;
    println!("created organization {id}: {} ({kind})", a.name);
    Ok(())
}

/// `server create-user`: the password is the first line of standard input.
pub async fn create_user(db: &PgPool, a: &CreateUser) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("could not read the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("give the password on standard input, e.g. `printf '%s\\n' \"$PASSWORD\" | server create-user ...`".into());
    }
    let id = accounts::create_user(db, a.org, &a.email, &a.name, password, a.platform_admin)
        .await
        .map_err(explain)?;
    println!(
        "created user {id}: {} in organization {}{}",
        app::account::normalize_email(&a.email),
        a.org,
        if a.platform_admin {
            " (platform administrator)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `server create-key`: the key is printed once, on standard output.
pub async fn create_key(db: &PgPool, a: &CreateKey, url: &PublicUrl) -> Result<(), String> {
    let scopes = a
        .scopes
        .split(',')
        .map(|s| {
            Scope::parse(s.trim())
                .ok_or_else(|| format!("unknown scope `{s}`; use read, reserve or operate"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = api_keys::NewKey {
        name: a.name.clone(),
        scopes,
        expires_in_days: a.expires_days,
    };
    let made = api_keys::create(db, a.org, None, &key, url, chrono::Utc::now())
        .await
        .map_err(explain)?;
    let scopes: Vec<&str> = made.key.scopes.iter().map(|s| s.as_str()).collect();
    eprintln!(
        "created API key {} ({}) for organization {} with scopes {}; it is shown once:",
        made.key.id,
        made.key.prefix,
        a.org,
        scopes.join(",")
    );
    println!("{}", made.secret);
    Ok(())
}

/// `server reconcile`: prints what was checked and every difference; an error (exit 1)
/// when the books disagree with the reservations or do not balance.
pub async fn reconcile(db: &PgPool) -> Result<(), String> {
    let r = app::services::ledger::reconcile(db, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "reconciled {} reservations: {} differences, ledger sum {} cents, {} unbalanced transactions, {} awaiting completion",
        r.reservations_checked,
        r.differences.len(),
        r.ledger_sum_cents,
        r.unbalanced_transactions,
        r.awaiting_recognition
    );
    for d in &r.differences {
        println!(
            "  reservation {}: {} expected {} cents, ledger has {}",
            d.reservation_id, d.what, d.expected_cents, d.actual_cents
        );
    }
    if r.is_clean() {
        Ok(())
    } else {
        Err("the ledger does not reconcile with the reservations".into())
    }
}
