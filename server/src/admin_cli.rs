//! Administration from the command line, for operations and scripts: create an
//! organization, a user (password read from standard input) or an API key (printed once).
//! Each command prints what it made; errors say which flag was wrong.

use app::account::Scope;
use app::services::{accounts, api_keys, error::ServiceError};
use sqlx::PgPool;
use std::collections::HashMap;
use std::io::BufRead;

pub const USAGE: &str = "\
    create-org  --name NAME --kind customer|operator|both
               Create an organization; prints its id.
    create-user --org ID --email EMAIL --name NAME [--platform-admin]
               Create a person in organization ID; the password is read from the
               first line of standard input. --platform-admin makes them the
               platform administrator (there can be one).
    create-key  --org ID --name NAME --scopes read[,reserve][,operate] [--expires-days N]
               Create an API key for organization ID; prints the key, once.";

/// `--flag value` pairs and bare `--switch`es.
fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!(
                "unexpected argument `{a}`; flags look like --name VALUE"
            ));
        };
        let value = match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

fn required<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    f.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("--{name} is required"))
}

fn org_id(f: &HashMap<String, String>) -> Result<i64, String> {
    required(f, "org")?.parse().map_err(|_| {
        "--org takes an organization id (a number; `create-org` prints it)".to_string()
    })
}

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

pub async fn run(db: &PgPool, command: &str, args: &[String]) -> Result<(), String> {
    let f = flags(args)?;
    match command {
        "create-org" => {
            let name = required(&f, "name")?;
            let kind = required(&f, "kind")?;
            let id = accounts::create_organization(db, name, kind)
                .await
                .map_err(explain)?;
            println!("created organization {id}: {name} ({kind})");
        }
        "create-user" => {
            let org = org_id(&f)?;
            let email = required(&f, "email")?;
            let name = required(&f, "name")?;
            let admin = f.contains_key("platform-admin");
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(|e| format!("could not read the password from standard input: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("give the password on standard input, e.g. `printf '%s\\n' \"$PASSWORD\" | server create-user ...`".into());
            }
            let id = accounts::create_user(db, org, email, name, password, admin)
                .await
                .map_err(explain)?;
            println!(
                "created user {id}: {} in organization {org}{}",
                app::account::normalize_email(email),
                if admin {
                    " (platform administrator)"
                } else {
                    ""
                }
            );
        }
        "create-key" => {
            let org = org_id(&f)?;
            let name = required(&f, "name")?;
            let scopes = required(&f, "scopes")?
                .split(',')
                .map(|s| {
                    Scope::parse(s.trim())
                        .ok_or_else(|| format!("unknown scope `{s}`; use read, reserve or operate"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let expires_in_days = match f.get("expires-days") {
                None => None,
                Some(d) => Some(
                    d.parse()
                        .map_err(|_| "--expires-days takes a whole number of days".to_string())?,
                ),
            };
            let key = api_keys::NewKey {
                name: name.to_string(),
                scopes,
                expires_in_days,
            };
            let made = api_keys::create(db, org, None, &key, chrono::Utc::now())
                .await
                .map_err(explain)?;
            let scopes: Vec<&str> = made.key.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "created API key {} ({}) for organization {org} with scopes {}; it is shown once:",
                made.key.id,
                made.key.prefix,
                scopes.join(",")
            );
            println!("{}", made.secret);
        }
        other => return Err(format!("unknown admin command `{other}`")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_values_and_switches() {
        let args: Vec<String> = ["--org", "3", "--platform-admin", "--name", "Ada"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = flags(&args).unwrap();
        assert_eq!(f["org"], "3");
        assert_eq!(f["platform-admin"], "");
        assert_eq!(f["name"], "Ada");
        assert!(flags(&["stray".to_string()]).is_err());
        assert_eq!(required(&f, "email").unwrap_err(), "--email is required");
    }
}
