import { execFileSync } from "node:child_process";
import { expect, Browser, Page } from "@playwright/test";

/** Runs SQL against the e2e database with psql and returns its unaligned output. */
export function sql(query: string): string {
  const url = process.env.RIGSHIFT_E2E_DATABASE_URL;
  if (!url) throw new Error("RIGSHIFT_E2E_DATABASE_URL is not set; run the tests through .ci/test");
  return execFileSync("psql", [url, "-q", "-v", "ON_ERROR_STOP=1", "-tAc", query], { encoding: "utf8" }).trim();
}

/**
 * A new customer organization with one owner who signs in with the demo password (its hash
 * is copied from a demo account), made in the database so that tests do not spend the
 * sign-up form's ten-an-hour allowance. Returns the owner's email.
 */
export function demoCustomer(tag: string): { email: string; organization: string } {
  return demoAccount(tag, "customer");
}

/** As `demoCustomer`, for an organization that operates capacity. */
export function demoOperator(tag: string): { email: string; organization: string } {
  return demoAccount(tag, "operator");
}

function demoAccount(tag: string, kind: "customer" | "operator"): { email: string; organization: string } {
  const stamp = `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const organization = `${kind === "customer" ? "Customer" : "Operator"} ${stamp}`;
  const email = `${kind}-${stamp}@example.com`;
  sql(`
    with o as (insert into organization (name, kind) values ('${organization}', '${kind}') returning id)
    insert into app_user (organization_id, email, display_name, password_hash, role)
    select o.id, '${email}', '${organization}', u.password_hash, 'owner'
      from o, app_user u where u.email = 'ops@lonestarhash.example'`);
  return { email, organization };
}

/** Lists a new 4-node × 8-GPU pool on a live demo site and returns the number of GPUs added. */
export function listExtraGpuPool(name: string): number {
  sql(`
    with site as (select id from site where status = 'live' order by id limit 1),
    pool as (
      insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node,
                                 gpu_memory_gb, interconnect, node_power_w, price_cents)
      select id, 'gpu', '${name.replace(/'/g, "''")}', 4, 'H100 SXM', 8, 80, 'infiniband', 10200, 249 from site
      returning id, site_id
    )
    insert into capacity_unit (site_id, pool_id, ordinal, label)
    select site_id, id, n, 'node-' || n from pool, generate_series(1, 4) n`);
  return 32;
}

/** A new browser context (JavaScript on or off) signed in as `email` with the demo password. */
export async function signIn(browser: Browser, js: boolean, email: string): Promise<Page> {
  const page = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("rigshift-demo-2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
  return page;
}
