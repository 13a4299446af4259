import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { sql } from "./db";

async function signIn(page: Page, email: string) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("rigshift-demo-2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
}

test("an operator compares AI with mining per MWh, with a what-if price, and passes axe", async ({ page }) => {
  // A demo operator whose site has mining figures and a GPU pool.
  const [email, site, hashprice, efficiency] = sql(
    `select u.email, s.name, s.hashprice_usd_cents_per_ph_day, s.fleet_efficiency_j_th
       from site s join app_user u on u.organization_id = s.operator_id
      where s.hashprice_usd_cents_per_ph_day is not null and s.fleet_efficiency_j_th is not null
        and exists (select 1 from capacity_pool p where p.site_id = s.id and p.kind = 'gpu')
      order by s.id limit 1`,
  ).split("|");
  await signIn(page, email);
  await page.goto("/operator/economics");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  const section = page.getByTestId("site-economics").filter({ hasText: site });
  // Mining per MWh = hashprice / (0.024 × J/TH), in dollars.
  const mining = Number(hashprice) / (0.024 * Number(efficiency)) / 100;
  const miningText = `$${mining.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  await expect(section.getByTestId("mining-rate")).toContainText(`Mining earns ${miningText} per MWh`);
  await expect(section.getByTestId("rate-chart")).toBeVisible();
  await expect(section.getByTestId("economics-table")).toContainText("/GPU-h");

  // The what-if price adds a column and a bar, by a plain GET form (shareable URL).
  await page.getByLabel("What-if GPU price (USD per GPU-hour)").fill("0.10");
  await page.getByRole("button", { name: "Compare" }).click();
  await expect(page).toHaveURL(/whatif=0\.10/);
  await expect(section.getByTestId("economics-table")).toContainText("Per MWh at $0.10");
  await expect(section.getByTestId("rate-chart")).toContainText("at what-if price");
  // A bad price is named, not guessed.
  await page.goto("/operator/economics?whatif=cheap");
  await expect(page.getByRole("alert")).toContainText("dollars");

  const axe = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const serious = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id);
  expect(serious).toEqual([]);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });
  test("the comparison and the what-if are server-rendered", async ({ page }) => {
    const email = sql(
      `select u.email from app_user u join site s on s.operator_id = u.organization_id
        where s.hashprice_usd_cents_per_ph_day is not null order by s.id limit 1`,
    );
    await signIn(page, email);
    await page.goto("/operator/economics?whatif=1.50");
    await expect(page.getByTestId("economics-table").first()).toContainText("Per MWh at $1.50");
  });
});
