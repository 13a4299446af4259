//! Who is asking: the organization behind a browser session or an API key, and what it may
//! do. Every service that touches an organization's data takes its ids from here, never from
//! the request body, so no request can speak for another organization.

use super::error::ServiceError;
use crate::account::{OrgKind, Scope};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub organization_id: i64,
    pub kind: OrgKind,
    pub platform_admin: bool,
    /// The person signed in with a second factor set up (always false for API keys).
    pub second_factor: bool,
    pub door: Door,
}

/// How the caller came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Door {
    /// A person in the browser: may do everything their organization may.
    Session { user_id: i64 },
    /// An integration: limited to the key's scopes.
    ApiKey { key_id: i64, scopes: Vec<Scope> },
}

impl Principal {
    pub fn user_id(&self) -> Option<i64> {
        match self.door {
            Door::Session { user_id } => Some(user_id),
            Door::ApiKey { .. } => None,
        }
    }

    pub fn allows(&self, scope: Scope) -> bool {
        match &self.door {
            Door::Session { .. } => true,
            Door::ApiKey { scopes, .. } => scopes.contains(&scope),
        }
    }

    /// Refuses a key without `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this API key lacks the `{scope}` scope; create a key with it on your account page"
            )))
        }
    }

    /// The organization as a customer, for reading or changing its reservations.
    pub fn customer(&self, scope: Scope) -> Result<i64, ServiceError> {
        self.require(scope)?;
        if !self.kind.buys() {
            return Err(ServiceError::Forbidden(
                "only customer organizations reserve capacity; this organization is an operator"
                    .into(),
            ));
        }
        Ok(self.organization_id)
    }

    /// The organization as an operator, for reading or changing its sites and capacity.
    pub fn operator(&self, scope: Scope) -> Result<i64, ServiceError> {
        self.require(scope)?;
        if !self.kind.operates() {
            return Err(ServiceError::Forbidden(
                "only operator organizations manage sites and capacity; this organization is a customer"
                    .into(),
            ));
        }
        Ok(self.organization_id)
    }

    /// The person in the browser; API keys can't manage accounts or other keys.
    pub fn person(&self) -> Result<i64, ServiceError> {
        self.user_id().ok_or_else(|| {
            ServiceError::Forbidden(
                "this is done by a signed-in person, not with an API key".into(),
            )
        })
    }

    /// The platform administrator, who must have a second factor: the role reaches every
    /// organization, so a stolen password alone must not be enough.
    pub fn admin(&self) -> Result<i64, ServiceError> {
        match self.user_id() {
            Some(_) if self.platform_admin && !self.second_factor => Err(ServiceError::Forbidden(
                "the platform administrator must sign in with a second factor: set up two-factor authentication on your account page first".into(),
            )),
            Some(id) if self.platform_admin => Ok(id),
            // Not an admin: the admin pages don't exist for them.
            _ => Err(ServiceError::NotFound("page")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: OrgKind, scopes: &[Scope]) -> Principal {
        Principal {
            organization_id: 7,
            kind,
            platform_admin: false,
            second_factor: false,
            door: Door::ApiKey {
                key_id: 1,
                scopes: scopes.to_vec(),
            },
        }
    }

    #[test]
    fn keys_are_held_to_their_scopes_and_roles() {
        let read_only = key(OrgKind::Both, &[Scope::Read]);
        assert_eq!(read_only.customer(Scope::Read).unwrap(), 7);
        assert_eq!(
            read_only.customer(Scope::Reserve).unwrap_err().status(),
            403
        );
        assert_eq!(
            read_only.operator(Scope::Operate).unwrap_err().status(),
            403
        );
        let customer = key(OrgKind::Customer, &Scope::ALL);
        assert_eq!(customer.operator(Scope::Read).unwrap_err().status(), 403);
        assert_eq!(customer.person().unwrap_err().status(), 403);
        assert_eq!(customer.admin().unwrap_err().status(), 404);
    }
}
