import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { sql } from "./db";

/** Serious and critical axe-core violations on the page as it is now. */
async function violations(page: Page) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  // axe really looked: it checked rules and found things that pass.
  expect(result.passes.length).toBeGreaterThan(10);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

test("every customer page has no serious or critical accessibility violations", async ({ page }) => {
  const pool = sql(`select id from capacity_pool where kind = 'gpu' and listed order by id limit 1`);
  const start = sql(`select to_char(date_trunc('hour', now()) + interval '5 days', 'YYYY-MM-DD"T"HH24:MI')`);
  const publicPages = [
    "/",
    "/?gpu_model=H100+SXM&gpus=16&hours=48",
    `/pools/${pool}`,
    `/pools/${pool}?gpus=16&start=${encodeURIComponent(start)}&hours=48&review=1`,
    "/login",
    "/signup",
    "/developers",
    "/no/such/page",
  ];
  const report: Record<string, string[]> = {};
  for (const path of publicPages) {
    await page.goto(path);
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    report[path] = await violations(page);
  }

  await page.goto("/login");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await page.getByLabel("Email").fill("ml@helixlabs.example");
  await page.getByLabel("Password").fill("rigshift-demo-2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
  const reservation = sql(
    `select r.id from reservation r join organization o on o.id = r.customer_id where o.name = 'Helix Labs' order by r.id limit 1`,
  );
  for (const path of ["/account", "/reservations", `/reservations/${reservation}`, "/webhooks", "/statement"]) {
    await page.goto(path);
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    report[path] = await violations(page);
  }
  const failing = Object.entries(report).filter(([, v]) => v.length > 0);
  expect(failing, JSON.stringify(failing, null, 2)).toEqual([]);
});
