//! The demo organizations: six operators (one of them also a customer) and three customers,
//! each with the owner who signs in with its demo account.

pub(super) struct Org {
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    /// Demo login: `<email>` / DEMO_PASSWORD.
    pub(super) email: &'static str,
    pub(super) person: &'static str,
}

pub(super) const ORGS: &[Org] = &[
    Org {
        name: "Lone Star Hash",
        kind: "operator",
        email: "ops@lonestarhash.example",
        person: "Dana Whitfield",
    },
    Org {
        name: "Appalachian Compute",
        kind: "operator",
        email: "ops@appalachian.example",
        person: "Marcus Bell",
    },
    Org {
        name: "Prairie Power Digital",
        kind: "operator",
        email: "ops@prairiepower.example",
        person: "Ingrid Olsen",
    },
    Org {
        name: "Nordic Frost",
        kind: "both",
        email: "ops@nordicfrost.example",
        person: "Sami Virtanen",
    },
    Org {
        name: "Laurentian Data",
        kind: "operator",
        email: "ops@laurentian.example",
        person: "Camille Tremblay",
    },
    Org {
        name: "Itaipu Compute",
        kind: "operator",
        email: "ops@itaipucompute.example",
        person: "Lucía Benítez",
    },
    Org {
        name: "Helix Labs",
        kind: "customer",
        email: "ml@helixlabs.example",
        person: "Priya Raman",
    },
    Org {
        name: "Northwind AI",
        kind: "customer",
        email: "infra@northwind.example",
        person: "Tom Akers",
    },
    Org {
        name: "Parallax Robotics",
        kind: "customer",
        email: "compute@parallax.example",
        person: "Yuki Sato",
    },
];
