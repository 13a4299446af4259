import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { execFileSync } from "node:child_process";
import { sql } from "./db";
import { totp } from "./security";

const DEMO_PASSWORD = "rigshift-demo-2026";
const ADMIN_EMAIL = "books-admin@rigshift.example";
const ADMIN_TOTP_SECRET = Buffer.from("rigshift-e2e-admin-2");
const ADMIN_PASSWORD = "ledger auditor 77 walnut";

/** `$12,345.67` for cents, as the app writes money. */
function usd(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const whole = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}$${whole}.${String(abs % 100).padStart(2, "0")}`;
}

async function hydrated(page: Page) {
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
}

async function signIn(page: Page, email: string, password: string) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
}

async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  expect(result.passes.length).toBeGreaterThan(10);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help}`);
}

/** The platform administrator, created once with the server's own command. */
function ensureAdmin() {
  if (sql(`select count(*) from app_user where email = '${ADMIN_EMAIL}'`) !== "0") return;
  const env = { ...process.env, DATABASE_URL: process.env.RIGSHIFT_E2E_DATABASE_URL, RUST_LOG: "warn" };
  const created = execFileSync("../target/release/server", ["create-org", "--name", "Rigshift Books", "--kind", "customer"], {
    env,
    encoding: "utf8",
  });
  // "created organization 11: …"
  const org = created.match(/organization (\d+)/)![1];
  execFileSync(
    "../target/release/server",
    ["create-user", "--org", org, "--email", ADMIN_EMAIL, "--name", "Books Admin", "--platform-admin"],
    { env, input: `${ADMIN_PASSWORD}\n`, encoding: "utf8" },
  );
  // The administrator must sign in with a second factor.
  sql(`update app_user set totp_secret = '\\x${ADMIN_TOTP_SECRET.toString("hex")}', totp_enabled_at = now()
        where email = '${ADMIN_EMAIL}'`);
}

/** Signs in with the password, then the code an authenticator for `secret` shows. */
async function signInWithCode(page: Page, email: string, password: string, secret: Buffer) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const form = page.getByTestId("login-code-form");
  await form.getByLabel("Code").fill(totp(secret));
  await form.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
}

test("a customer's statement matches the books, downloads as CSV and passes axe", async ({ page }) => {
  await signIn(page, "ml@helixlabs.example", DEMO_PASSWORD);
  const org = sql(`select id from organization where name = 'Helix Labs'`);
  // The latest month with postings: early in a month, this month may have none yet.
  const month = sql(`select to_char(max(t.effective_at) at time zone 'UTC', 'YYYY-MM')
                       from ledger_entry e join ledger_account a on a.id = e.account_id
                       join ledger_transaction t on t.id = e.transaction_id
                      where a.organization_id = ${org} and a.kind = 'customer_receivable'
                        and t.effective_at <= now()`);
  await page.goto(`/statement?month=${month}`);
  await hydrated(page);
  const closing = Number(
    sql(`select coalesce(sum(e.amount_cents), 0) from ledger_entry e
           join ledger_account a on a.id = e.account_id
           join ledger_transaction t on t.id = e.transaction_id
          where a.organization_id = ${org} and a.kind = 'customer_receivable'
            and t.effective_at < (to_date('${month}', 'YYYY-MM') + interval '1 month')::timestamp at time zone 'UTC'`),
  );
  const lines = Number(
    sql(`select count(*) from ledger_entry e
           join ledger_account a on a.id = e.account_id
           join ledger_transaction t on t.id = e.transaction_id
          where a.organization_id = ${org} and a.kind = 'customer_receivable'
            and to_char(t.effective_at at time zone 'UTC', 'YYYY-MM') = '${month}'`),
  );
  expect(lines).toBeGreaterThan(0);
  await expect(page.getByTestId("statement-closing")).toHaveText(usd(closing));
  await expect(page.getByTestId("statement-lines").locator("tbody tr")).toHaveCount(lines);

  // The CSV is the same lines, for this signed-in customer only.
  const csv = await page.request.get(`/statement.csv?month=${month}`);
  expect(csv.status()).toBe(200);
  expect(csv.headers()["content-type"]).toContain("text/csv");
  const rows = (await csv.text()).trim().split("\n");
  expect(rows[0]).toBe("date_utc,transaction,kind,reservation,pool,description,amount,currency");
  expect(rows.length).toBe(lines + 1);
  // A month written wrongly is a clear 422, not a crash.
  const bad = await page.request.get(`/statement.csv?month=2026-13`);
  expect(bad.status()).toBe(422);
  expect(await bad.text()).toContain("YYYY-MM");

  // Last month: an earlier statement, reached by the month links.
  await page.getByTestId("previous-month").click();
  await expect(page).toHaveURL(/month=\d{4}-\d{2}/);
  expect(await seriousViolations(page)).toEqual([]);
});

test("an operator sees what it is owed, the platform pays it out, the books reconcile", async ({ browser }) => {
  ensureAdmin();
  // The demo operator the platform owes most (its demo reservations have ended).
  const [org, name, email] = sql(
    `select o.id, o.name, u.email from ledger_account_balance b
       join organization o on o.id = b.organization_id
       join app_user u on u.organization_id = o.id
      where b.kind = 'operator_payable' order by b.balance_cents, o.id limit 1`,
  ).split("|");
  const owed = Number(
    sql(`select coalesce(-sum(balance_cents), 0) from ledger_account_balance
          where organization_id = ${org} and kind = 'operator_payable'`),
  );
  expect(owed).toBeGreaterThan(0);
  const operator = await (await browser.newContext()).newPage();
  await signIn(operator, email, DEMO_PASSWORD);
  await operator.goto("/earnings");
  await hydrated(operator);
  await expect(operator.getByTestId("earnings-payable")).toHaveText(usd(owed));
  await expect(operator.getByTestId("earnings-rows").locator("tbody tr").first()).toBeVisible();
  expect(await seriousViolations(operator)).toEqual([]);

  const admin = await (await browser.newContext()).newPage();
  await signInWithCode(admin, ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOTP_SECRET);
  await admin.goto("/admin/books");
  await hydrated(admin);
  await expect(admin.getByTestId("reconciliation")).toContainText(": 0 differences");
  expect(await seriousViolations(admin)).toEqual([]);
  const row = admin.getByTestId("operator-balances").locator("tr", { hasText: name });
  await row.getByLabel("Transfer reference").fill(`e2e-wire-${Date.now()}`);
  await row.getByRole("button", { name: "Record payout" }).click();
  await expect(admin.getByText("Payout recorded.")).toBeVisible();
  await expect(row).toContainText("Nothing owed");
  expect(
    sql(`select count(*) from ledger_transaction where kind = 'payout' and organization_id = ${org}`),
  ).toBe("1");
  await expect(admin.getByTestId("reconciliation")).toContainText(": 0 differences");

  await operator.goto("/earnings");
  await expect(operator.getByTestId("earnings-payable")).toHaveText("$0.00");
  await expect(operator.getByTestId("earnings-paid")).toHaveText(usd(owed));
  await expect(operator.getByTestId("payouts").locator("tbody tr")).toHaveCount(1);

  // People without the administrator flag find no books.
  const res = await operator.goto("/admin/books");
  expect(res?.status()).toBe(404);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });
  test("the statement's month picker is a plain form", async ({ page }) => {
    await signIn(page, "infra@northwind.example", DEMO_PASSWORD);
    await page.goto("/statement");
    await expect(page.getByRole("heading", { level: 1, name: "Statement" })).toBeVisible();
    await page.getByLabel("Month", { exact: true }).fill("2026-01");
    await page.getByRole("button", { name: "Show" }).click();
    await expect(page).toHaveURL(/\/statement\?month=2026-01/);
    await expect(page.getByRole("heading", { name: "January 2026" })).toBeVisible();
    await expect(page.getByTestId("statement-empty")).toBeVisible();
  });
});
