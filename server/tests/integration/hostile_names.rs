//! Every name a user types is hostile. The demo market's organizations, sites, regions,
//! grid regions, GPU models and pools are renamed to markup that would redirect or run
//! script if it reached a page unescaped, and every page that shows such a name is
//! rendered: none of the names' markup may appear, in the `<title>` or anywhere else.

use crate::helpers::TestApp;
use app::services::accounts;
use sqlx::PgPool;

/// Markup that closes the `<title>`, redirects the visitor and opens an image with a
/// script handler; `what` tells which kind of name leaked.
fn hostile(what: &str) -> String {
    format!(
        r#"{what}</title><meta http-equiv="refresh" content="0;url=https://evil.example/{what}"><title><img src=x onerror=alert('{what}')>"#
    )
}

/// The fragments of `hostile` that are markup only when unescaped.
const RAW: [&str; 3] = [
    "<meta http-equiv=\"refresh\"",
    "<img src=x",
    "</title><meta",
];

async fn rename_everything(db: &PgPool) {
    for (sql, what) in [
        ("update organization set name = $1 || ' #' || id", "org"),
        (
            "update site set name = $1 || ' #' || id, region = $1, grid_region = $1",
            "site",
        ),
        ("update capacity_pool set name = $1 || ' #' || id", "pool"),
        (
            "update capacity_pool set gpu_model = $1 where kind = 'gpu'",
            "gpu",
        ),
    ] {
        sqlx::query(sql)
            .bind(hostile(what))
            .execute(db)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn hostile_names_never_reach_a_page_as_markup(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let platform = accounts::create_organization(&db, "Rigshift Platform", "customer")
        .await
        .unwrap();
    let admin_password = "violet kettle orbit 2026";
    accounts::create_user(
        &db,
        platform,
        "admin@rigshift.example",
        "Admin",
        admin_password,
        true,
    )
    .await
    .unwrap();
    rename_everything(&db).await;

    // A Lone Star Hash GPU pool and site, and a Helix Labs reservation on Lone Star capacity.
    let (pool, site): (i64, i64) = sqlx::query_as(
        r#"select p.id, s.id from capacity_pool p join site s on s.id = p.site_id
           join app_user u on u.organization_id = s.operator_id
           where u.email = 'ops@lonestarhash.example' and p.kind = 'gpu' order by p.id limit 1"#,
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let reservation: i64 = sqlx::query_scalar(
        r#"select r.id from reservation r join app_user u on u.organization_id = r.customer_id
           where u.email = 'ml@helixlabs.example' order by r.id limit 1"#,
    )
    .fetch_one(&db)
    .await
    .unwrap();

    let app = TestApp::spawn(db.clone()).await;
    let pw = server::seed::DEMO_PASSWORD;
    let operator = app.log_in("ops@lonestarhash.example", pw).await;
    let customer = app.log_in("ml@helixlabs.example", pw).await;
    let secret = crate::helpers::enable_second_factor(&db, "admin@rigshift.example").await;
    let admin = app
        .log_in_with_code("admin@rigshift.example", admin_password, &secret)
        .await;

    let pages: Vec<(String, Option<&str>, &[&str])> = vec![
        ("/".into(), None, &["pool", "site", "gpu"]),
        ("/?duration_hours=24".into(), None, &["pool", "site", "gpu"]),
        (format!("/pools/{pool}"), None, &["pool", "site", "gpu"]),
        ("/operator".into(), Some(&operator), &["site"]),
        (
            format!("/operator/sites/{site}"),
            Some(&operator),
            &["site"],
        ),
        (
            format!("/operator/pools/{pool}"),
            Some(&operator),
            &["pool"],
        ),
        ("/operator/economics".into(), Some(&operator), &["site"]),
        ("/earnings".into(), Some(&operator), &[]),
        ("/account".into(), Some(&operator), &["org"]),
        ("/reservations".into(), Some(&customer), &["pool"]),
        (
            format!("/reservations/{reservation}"),
            Some(&customer),
            &["pool"],
        ),
        ("/statement".into(), Some(&customer), &[]),
        ("/admin".into(), Some(&admin), &["org"]),
        ("/admin/books".into(), Some(&admin), &[]),
    ];
    for (path, cookie, shown) in pages {
        let mut req = app.client.get(app.url(&path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let html = res.text().await.unwrap();
        for raw in RAW {
            assert!(
                !html.contains(raw),
                "{path} carries a name's markup unescaped ({raw})"
            );
        }
        // The names are on the page, escaped: the test looks where they are.
        for what in shown {
            assert!(
                html.contains(&format!("{what}&lt;/title&gt;&lt;meta")),
                "{path} should show the {what} name, escaped"
            );
        }
        let head = html.split("</head>").next().unwrap();
        let title = head
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t)
            .unwrap_or_else(|| panic!("{path} has a <title>"));
        assert!(title.ends_with(" · Rigshift"), "{path}: title {title:?}");
        assert_eq!(
            head.matches("<title>").count(),
            1,
            "{path}: one title element in the head"
        );
    }
}
