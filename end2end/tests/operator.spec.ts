import { test, expect, Page, Browser } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { sql } from "./db";

const DEMO_PASSWORD = "rigshift-demo-2026";
const OPERATOR = "ops@lonestarhash.example";
const CUSTOMER = "ml@helixlabs.example";

async function signIn(page: Page, email: string) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(DEMO_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
}

async function hydrated(page: Page) {
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
}

async function noSeriousViolations(page: Page) {
  const axe = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const serious = axe.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(serious).toEqual([]);
}

/** `YYYY-MM-DDTHH:00` in UTC, `hours` from now rounded up to the hour. */
function utcHourFromNow(hours: number): string {
  const t = new Date(Date.now() + hours * 3600_000);
  t.setUTCMinutes(0, 0, 0);
  t.setUTCHours(t.getUTCHours() + 1);
  return t.toISOString().slice(0, 16);
}

async function newPage(browser: Browser, js = true) {
  const context = await browser.newContext({ javaScriptEnabled: js });
  return context.newPage();
}

test("an operator lists a site and a GPU pool, sees a customer's booking, its power and use, and manages maintenance", async ({ browser }) => {
  const ops = await newPage(browser);
  await signIn(ops, OPERATOR);
  await ops.goto("/operator");
  await hydrated(ops);
  await noSeriousViolations(ops);

  // A new site, through the form.
  const siteName = `Pecos Conversion ${Date.now()}`;
  await ops.getByTestId("new-site").click();
  await expect(ops).toHaveURL(/\/operator\/sites\/new$/);
  await hydrated(ops);
  await noSeriousViolations(ops);
  const siteForm = ops.getByTestId("site-form");
  // A bad interconnect is named and nothing is created.
  await siteForm.getByLabel("Name").fill(siteName);
  await siteForm.getByLabel("Country (2 letters)").fill("US");
  await siteForm.getByLabel("Region", { exact: false }).first().fill("Texas");
  await siteForm.getByLabel("Grid region").fill("ERCOT");
  await siteForm.getByLabel("Energy source").fill("wind + grid");
  await siteForm.getByLabel("Interconnect (MW)").fill("lots");
  await siteForm.getByLabel("PUE").fill("1.25");
  await siteForm.getByLabel("Cooling").fill("immersion");
  await siteForm.getByLabel("Fleet efficiency (J/TH)").fill("22");
  await siteForm.getByLabel("Hashprice (USD per PH/s per day)").fill("48");
  await siteForm.getByRole("button", { name: "List the site" }).click();
  await expect(siteForm.getByRole("alert")).toContainText("interconnect in MW");
  expect(sql(`select count(*) from site where name = '${siteName}'`)).toBe("0");
  await siteForm.getByLabel("Interconnect (MW)").fill("2");
  await siteForm.getByRole("button", { name: "List the site" }).click();
  await expect(ops).toHaveURL(/\/operator\/sites\/\d+\?saved=\d+$/);
  await expect(ops.getByTestId("site-saved")).toBeVisible();
  const siteId = Number(new URL(ops.url()).pathname.split("/").pop());
  await hydrated(ops);
  await expect(ops.getByTestId("power-interconnect")).toHaveText("2.00 MW");
  await expect(ops.getByTestId("power-peak")).toHaveText("0 kW");
  await noSeriousViolations(ops);

  // More firm AI load than 2 MW carries is refused: 200 nodes × 10.2 kW × 1.25 = 2.55 MW.
  const gpuForm = ops.getByTestId("gpu-pool-form");
  await gpuForm.getByLabel("Pool name").fill("H100 hall A");
  await gpuForm.getByLabel("GPU model").fill("H100 SXM");
  await gpuForm.getByLabel("IT power per node (W)").fill("10200");
  await gpuForm.getByLabel("Units for sale").fill("200");
  await gpuForm.getByLabel("Price (USD per GPU-hour)").fill("2.10");
  await gpuForm.getByRole("button", { name: "List the GPU nodes" }).click();
  await expect(gpuForm.getByRole("alert")).toContainText("interconnect");
  expect(sql(`select count(*) from capacity_pool where site_id = ${siteId}`)).toBe("0");
  await gpuForm.getByLabel("Units for sale").fill("4");
  await gpuForm.getByRole("button", { name: "List the GPU nodes" }).click();
  await expect(ops).toHaveURL(/\/operator\/pools\/\d+\?listed=1$/);
  const poolId = Number(new URL(ops.url()).pathname.split("/").pop());
  await hydrated(ops);
  await expect(ops.getByTestId("sale-windows")).toBeVisible();
  await expect(ops.getByTestId("unit-chart")).toBeVisible();
  await noSeriousViolations(ops);

  // The site is live so customers can book it.
  sql(`update site set status = 'live' where id = ${siteId}`);

  // A customer reserves 2 of the 4 nodes for a day, two days ahead.
  const start = utcHourFromNow(48);
  const buyer = await newPage(browser);
  await signIn(buyer, CUSTOMER);
  await buyer.goto(`/pools/${poolId}?units=2&start=${start}&hours=24&review=1`);
  await hydrated(buyer);
  await buyer.getByTestId("confirm-reserve").click();
  await expect(buyer).toHaveURL(/\/reservations\/\d+$/);
  const reservationId = Number(new URL(buyer.url()).pathname.split("/").pop());

  // The operator sees the booking, filtered by the pool, with its total and in the CSV.
  await ops.goto(`/operator?pool=${poolId}`);
  await hydrated(ops);
  await expect(ops.getByTestId("booking-table")).toContainText(`#${reservationId}`);
  await expect(ops.getByTestId("booking-totals")).toContainText("48");
  const csv = await ops.request.get(`/operator/bookings.csv?pool=${poolId}`);
  expect(csv.status()).toBe(200);
  expect(await csv.text()).toContain(`${reservationId},${siteId},${poolId},H100 hall A,Helix Labs,2,`);
  await ops.goto(`/operator?pool=${poolId}&state=cancelled`);
  await expect(ops.getByTestId("no-bookings")).toBeVisible();
  await ops.goto(`/operator?from=soon`);
  await expect(ops.locator("#bookings").getByRole("alert")).toContainText("YYYY-MM-DD");

  // The power chart and the utilization chart show it: 2 nodes × 10.2 kW × 1.25 = 25.5 kW.
  await ops.goto(`/operator/sites/${siteId}`);
  await hydrated(ops);
  await expect(ops.getByTestId("power-peak")).toHaveText("25 kW");
  await expect(ops.getByTestId("power-chart")).toHaveAttribute("aria-label", /booked AI load peaking at 25 kW/);
  await ops.goto(`/operator/pools/${poolId}`);
  await hydrated(ops);
  await expect(ops.getByTestId("unit-chart")).toContainText(`#${reservationId}`);

  // Maintenance on the two free nodes over the same window is accepted…
  const end = utcHourFromNow(72);
  const blackout = ops.getByTestId("blackout-form");
  await blackout.getByLabel("Units").fill("2");
  await blackout.getByLabel("From (UTC)").fill(start);
  await blackout.getByLabel("Until (UTC)").fill(end);
  await blackout.getByLabel("Reason").fill("firmware");
  await blackout.getByRole("button", { name: "Add the blackout" }).click();
  await expect(ops).toHaveURL(/blackout=\d+/);
  await expect(ops.getByTestId("pool-blackouts")).toContainText("firmware");
  // …and over every node it is refused, naming the reservation in the way.
  await hydrated(ops);
  const again = ops.getByTestId("blackout-form");
  await again.getByLabel("From (UTC)").fill(start);
  await again.getByLabel("Until (UTC)").fill(end);
  await again.getByRole("button", { name: "Add the blackout" }).click();
  await expect(again.getByRole("alert")).toContainText(`#${reservationId}`);
  expect(sql(`select count(*) from blackout where pool_id = ${poolId}`)).toBe("1");
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the operator's pages and forms are server-rendered", async ({ page }) => {
    await signIn(page, OPERATOR);
    const siteId = sql(
      `select s.id from site s join app_user u on u.organization_id = s.operator_id
        where u.email = '${OPERATOR}' and exists (select 1 from capacity_pool p where p.site_id = s.id)
        order by s.id limit 1`,
    );
    await page.goto(`/operator/sites/${siteId}`);
    await expect(page.getByTestId("power-chart")).toBeVisible();
    await expect(page.getByTestId("site-pools")).toBeVisible();
    // Editing the site by a plain form post: a new hashprice is saved.
    const form = page.getByTestId("site-form");
    await form.getByLabel("Hashprice (USD per PH/s per day)").fill("51.25");
    await form.getByRole("button", { name: "Save the site" }).click();
    await expect(page).toHaveURL(new RegExp(`/operator/sites/${siteId}\\?saved=\\d+$`));
    expect(sql(`select hashprice_usd_cents_per_ph_day from site where id = ${siteId}`)).toBe("5125");
    const poolId = sql(`select id from capacity_pool where site_id = ${siteId} order by id limit 1`);
    await page.goto(`/operator/pools/${poolId}`);
    await expect(page.getByTestId("week-shares")).toBeVisible();
    // A new price by a plain form post; the page says it was saved.
    const terms = page.getByTestId("terms-form");
    await terms.getByLabel("Price (USD per").fill("3.35");
    await terms.getByRole("button", { name: "Save price and terms" }).click();
    await expect(page.getByTestId("pool-notice")).toContainText("Price and terms saved");
    expect(sql(`select price_cents from capacity_pool where id = ${poolId}`)).toBe("335");
    await page.goto(`/operator?site=${siteId}`);
    await expect(page.getByTestId("booking-totals")).toBeVisible();
  });

  test("a customer can't open the operator's pages", async ({ page }) => {
    await signIn(page, CUSTOMER);
    const poolId = sql(`select id from capacity_pool order by id limit 1`);
    const res = await page.goto(`/operator/pools/${poolId}`);
    expect(res?.status()).toBe(403);
    await expect(page.getByTestId("not-operator")).toBeVisible();
    const csv = await page.request.get(`/operator/bookings.csv`);
    expect(csv.status()).toBe(403);
  });
});
