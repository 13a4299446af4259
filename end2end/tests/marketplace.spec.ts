import { test, expect, Page } from "@playwright/test";
import { demoCustomer, demoOperator, sql } from "./db";

const PASSWORD = "amber canyon 7 lighthouses";

/** A fresh customer account, signed in; returns its organization's name. */
async function signUp(page: Page, tag: string): Promise<string> {
  const email = `buyer-${tag}-${Date.now()}@example.com`;
  const organization = `Buyer ${tag} ${Date.now()}`;
  await page.goto("/signup");
  const form = page.getByTestId("signup-form");
  await form.getByLabel("Organization").fill(organization);
  await form.getByLabel("Your name").fill(`Buyer ${tag}`);
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill(PASSWORD);
  await form.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/account$/);
  return organization;
}

/** A customer made in the database, signed in through the login form; returns its organization. */
async function signInAsNewCustomer(page: Page, tag: string): Promise<string> {
  const { email, organization } = demoCustomer(tag);
  await signInAs(page, email);
  return organization;
}

async function signInAs(page: Page, email: string) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("rigshift-demo-2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
}

/** Search from the home page, open the first hit, review and reserve; returns the reservation id. */
async function searchAndReserve(page: Page) {
  await page.goto("/");
  const search = page.getByTestId("search-form");
  await search.getByLabel("GPU model").selectOption("H100 SXM");
  await search.getByLabel("GPUs", { exact: true }).fill("16");
  await search.getByLabel("Duration (hours)").fill("48");
  await search.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/gpu_model=H100\+SXM/);
  const hits = page.getByTestId("search-results").locator("li.hit");
  await expect(hits.first()).toBeVisible();
  await hits.first().getByRole("link", { name: "View and reserve" }).click();
  await expect(page).toHaveURL(/\/pools\/\d+\?units=/);
  await expect(page.getByTestId("availability-chart")).toBeVisible();
  await page.getByTestId("reserve-form").getByRole("button", { name: "Review the exact quote" }).click();
  await expect(page.getByTestId("review")).toBeVisible();
  const total = (await page.getByTestId("review-total").textContent())!.trim();
  await page.getByTestId("confirm-reserve").click();
  await expect(page).toHaveURL(/\/reservations\/\d+$/);
  await expect(page.getByTestId("reservation-total")).toHaveText(total);
  return Number(new URL(page.url()).pathname.split("/").pop());
}

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    test.use({ javaScriptEnabled: js });

    test("sign up, search, open a pool, reserve, see it, cancel", async ({ page }) => {
      await signUp(page, js ? "js" : "nojs");
      const id = await searchAndReserve(page);
      expect(sql(`select state from reservation where id = ${id}`)).toBe("confirmed");

      await page.goto("/reservations");
      await expect(page.getByTestId("reservation-table")).toContainText(`#${id}`);
      await page.goto(`/reservations/${id}`);
      await expect(page.getByTestId("refund-preview")).toContainText("Cancelling now refunds");
      await page.getByTestId("confirm-cancel").click();
      await expect(page.getByTestId("reservation-facts")).toContainText("cancelled");
      expect(sql(`select state from reservation where id = ${id}`)).toBe("cancelled");
    });
  });
}

test("a double click on reserve books once and shows that reservation", async ({ page }) => {
  const organization = await signInAsNewCustomer(page, "double");
  const pool = sql(`select id from capacity_pool where kind = 'gpu' and listed order by id limit 1`);
  const start = sql(`select to_char(date_trunc('hour', now()) + interval '5 days', 'YYYY-MM-DD"T"HH24:MI')`);
  await page.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&review=1`);
  // Hydrated, so both clicks go through the app's action, each with the form's one key.
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("confirm-reserve")).toBeVisible();
  await page.getByTestId("confirm-reserve").dblclick();
  await expect(page).toHaveURL(/\/reservations\/\d+$/);
  const id = new URL(page.url()).pathname.split("/").pop();
  const made = sql(
    `select string_agg(r.id::text, ',') from reservation r join organization o on o.id = r.customer_id
      where o.name = '${organization.replace(/'/g, "''")}'`,
  );
  expect(made).toBe(id);
});

test("the quote preview updates as the customer types", async ({ page }) => {
  const pool = sql(`select id from capacity_pool where kind = 'gpu' and listed order by id limit 1`);
  await page.goto(`/pools/${pool}`);
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  const preview = page.getByTestId("quote-preview");
  await page.getByTestId("reserve-form").getByLabel("GPUs").fill("8");
  await page.getByTestId("reserve-form").getByLabel("Duration (hours)").fill("24");
  await expect(preview).toContainText("1 units for 24 hours");
  const one = await preview.textContent();
  await page.getByTestId("reserve-form").getByLabel("GPUs").fill("16");
  await expect(preview).toContainText("2 units for 24 hours");
  expect(await preview.textContent()).not.toBe(one);
});

test("two customers race for the last units: one wins, the other is shown the next window", async ({ browser }) => {
  // A one-node pool on a live demo site, open for a year.
  const pool = sql(`
    with site as (select id from site where status = 'live' order by id limit 1),
    p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                     interconnect, node_power_w, price_cents, min_lead_hours)
          select id, 'gpu', 'Race pool', 1, 'H100 SXM', 8, 80, 'infiniband', 10200, 250, 0 from site returning id, site_id),
    u as (insert into capacity_unit (site_id, pool_id, ordinal, label) select site_id, id, 1, 'node-1' from p)
    insert into availability_window (site_id, pool_id, during)
    select site_id, id, tstzrange(date_trunc('hour', now()), date_trunc('hour', now()) + interval '365 days') from p
    returning pool_id`);
  const start = sql(`select to_char(date_trunc('hour', now()) + interval '3 days', 'YYYY-MM-DD"T"HH24:MI')`);
  const url = `/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&review=1`;

  const a = await browser.newContext();
  const b = await browser.newContext();
  const pa = await a.newPage();
  const pb = await b.newPage();
  await signUp(pa, "race-a");
  await signUp(pb, "race-b");
  await pa.goto(url);
  await pb.goto(url);
  // Both pages live, so each form is sent by the page, which keeps the review on a refusal.
  await expect(pa.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(pb.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(pa.getByTestId("confirm-reserve")).toBeVisible();
  await expect(pb.getByTestId("confirm-reserve")).toBeVisible();
  await Promise.all([pa.getByTestId("confirm-reserve").click(), pb.getByTestId("confirm-reserve").click()]);

  const won = async (p: Page) => /\/reservations\/\d+$/.test(p.url());
  await expect.poll(async () => (await won(pa)) || (await won(pb))).toBe(true);
  const loser = (await won(pa)) ? pb : pa;
  await expect(loser.getByTestId("review").getByTestId("form-error-in-place")).toContainText("next window that fits starts");
  expect(sql(`select count(*) from reservation where pool_id = ${pool} and state = 'confirmed'`)).toBe("1");
  await a.close();
  await b.close();
});

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    test.use({ javaScriptEnabled: js });

    test("interruptible capacity is booked cheaper, preempted by a firm booking and credited", async ({ browser }) => {
      // A one-node pool selling both tiers, interruptible without notice.
      const pool = sql(`
        with site as (select id from site where status = 'live' order by id limit 1),
        p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                         interconnect, node_power_w, price_cents, min_lead_hours,
                                         interruptible_price_cents, interruptible_notice_hours)
              select id, 'gpu', 'Flex pool ${js ? "js" : "nojs"}', 1, 'H100 SXM', 8, 80, 'infiniband', 10200, 250, 0, 150, 0
                from site returning id, site_id),
        u as (insert into capacity_unit (site_id, pool_id, ordinal, label) select site_id, id, 1, 'node-1' from p)
        insert into availability_window (site_id, pool_id, during)
        select site_id, id, tstzrange(date_trunc('hour', now()), date_trunc('hour', now()) + interval '365 days') from p
        returning pool_id`);
      const start = sql(`select to_char(date_trunc('hour', now()) + interval '4 days', 'YYYY-MM-DD"T"HH24:MI')`);
      const url = (tier: string) =>
        `/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&tier=${tier}&review=1`;

      const flex = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
      await signInAsNewCustomer(flex, `flex-${js ? "js" : "nojs"}`);
      await flex.goto(url("interruptible"));
      await expect(flex.getByTestId("tier-choice")).toContainText("40% less");
      await expect(flex.getByTestId("review-tier")).toHaveText("interruptible");
      await flex.getByTestId("confirm-reserve").click();
      await expect(flex).toHaveURL(/\/reservations\/\d+$/);
      await expect(flex.getByTestId("reservation-tier")).toContainText("interruptible");
      const flexPath = new URL(flex.url()).pathname;

      const firm = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
      await signInAsNewCustomer(firm, `firm-${js ? "js" : "nojs"}`);
      await firm.goto(url("firm"));
      await expect(firm.getByTestId("review-preemption")).toContainText("takes 1 unit from interruptible reservations");
      await firm.getByTestId("confirm-reserve").click();
      await expect(firm).toHaveURL(/\/reservations\/\d+$/);
      await expect(firm.getByTestId("reservation-tier")).toContainText("firm");

      await flex.goto(flexPath);
      await expect(flex.getByTestId("reservation-credits")).toContainText("preempted from");
      await expect(flex.getByTestId("reservation-credited")).toBeVisible();
      const id = flexPath.split("/").pop();
      expect(sql(`select credited_cents = total_cents from reservation where id = ${id}`)).toBe("t");
      await flex.context().close();
      await firm.context().close();
    });
  });
}

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    test.use({ javaScriptEnabled: js });

    test("a grid event sheds mining, then an interruptible booking, which is credited", async ({ browser }) => {
      const tag = js ? "js" : "nojs";
      // An operator's small site: 200 kW interconnect, 50 kW of mining (2,000 TH/s at 25 J/TH),
      // two 12.75 kW nodes (10.2 kW × PUE 1.25) sold firm or interruptible.
      const op = demoOperator(`grid-${tag}`);
      const [site, pool] = sql(`
        with s as (insert into site (operator_id, name, country, region, grid_region, energy_source, interconnect_kw,
                                     pue, cooling, status, hashrate_th, fleet_efficiency_j_th, hashprice_usd_cents_per_ph_day)
                   select o.id, 'Curtail <b>yard</b>', 'US', 'Texas', 'ERCOT', 'wind', 200, 1.25, 'air', 'live', 2000, 25, 4800
                     from organization o where o.name = '${op.organization}' returning id),
        p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                         interconnect, node_power_w, price_cents, min_lead_hours,
                                         interruptible_price_cents, interruptible_notice_hours)
              select id, 'gpu', 'Curtailable ${tag}', 2, 'H100 SXM', 8, 80, 'infiniband', 10200, 250, 0, 150, 0
                from s returning id, site_id),
        u as (insert into capacity_unit (site_id, pool_id, ordinal, label)
              select site_id, id, n, 'node-' || n from p, generate_series(1, 2) n),
        w as (insert into availability_window (site_id, pool_id, during)
              select site_id, id, tstzrange(date_trunc('hour', now()), date_trunc('hour', now()) + interval '365 days') from p)
        select site_id || '|' || id from p`).split("|");
      const start = sql(`select to_char(date_trunc('hour', now()) + interval '4 days', 'YYYY-MM-DD"T"HH24:MI')`);
      const eventStart = sql(`select to_char(date_trunc('hour', now()) + interval '4 days 2 hours', 'YYYY-MM-DD"T"HH24:MI')`);

      // Signed out, the review offers to sign in and comes back to it.
      const customer = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
      const buyer = demoCustomer(`curtailed-${tag}`);
      await customer.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&tier=interruptible&review=1`);
      await expect(customer.getByTestId("review-tier")).toHaveText("interruptible");
      await expect(customer.getByTestId("confirm-reserve")).toHaveCount(0);
      await customer.getByTestId("sign-in-to-reserve").click();
      await customer.getByLabel("Email").fill(buyer.email);
      await customer.getByLabel("Password").fill("rigshift-demo-2026");
      await customer.getByRole("button", { name: "Sign in" }).click();
      await expect(customer).toHaveURL(/review=1/);
      await expect(customer.getByTestId("review-tier")).toHaveText("interruptible");
      await customer.getByTestId("confirm-reserve").click();
      await expect(customer).toHaveURL(/\/reservations\/\d+$/);
      const reservationPath = new URL(customer.url()).pathname;
      const id = reservationPath.split("/").pop();

      const operator = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
      await signInAs(operator, op.email);
      await operator.goto(`/operator/sites/${site}`);
      await expect(operator.getByTestId("no-grid-events")).toBeVisible();
      if (js) await expect(operator.locator("body[data-hydrated=true]")).toBeAttached();
      const form = operator.getByTestId("grid-event-form");
      await form.getByLabel("Program", { exact: true }).fill("ERCOT <i>ERS</i>");
      await form.getByLabel("Starts (UTC)").fill(eventStart);
      await form.getByLabel("Hours").fill("3");
      // More than the whole site can shed without firm load: refused with the numbers.
      await form.getByLabel("Load to shed (kW)").fill("90");
      await form.getByRole("button", { name: "Record the event and shed" }).click();
      await expect(operator.getByRole("alert").filter({ hasText: "mining runs 50 kW" })).toBeVisible();
      expect(sql(`select count(*) from grid_event where site_id = ${site}`)).toBe("0");

      const again = operator.getByTestId("grid-event-form");
      await again.getByLabel("Program", { exact: true }).fill("ERCOT <i>ERS</i>");
      await again.getByLabel("Starts (UTC)").fill(eventStart);
      await again.getByLabel("Hours").fill("3");
      await again.getByLabel("Load to shed (kW)").fill("60");
      await again.getByLabel("Payment (USD per MWh)").fill("150");
      await again.getByRole("button", { name: "Record the event and shed" }).click();
      await expect(operator.getByTestId("grid-event-recorded")).toBeVisible();
      const table = operator.getByTestId("grid-event-table");
      await expect(table).toContainText("ERCOT <i>ERS</i>");
      await expect(table).toContainText("50 kW");
      await expect(table).toContainText("13 kW");
      await expect(operator.getByTestId("chart-grid-event")).toHaveCount(1);
      await expect(operator.locator("i", { hasText: "ERS" })).toHaveCount(0);
      await table.getByRole("link", { name: "ERCOT <i>ERS</i>" }).click();
      await expect(operator.getByTestId("shed-units")).toContainText(`#${id}`);
      await expect(operator.getByTestId("event-mining")).toHaveText("50 kW");

      await customer.goto(reservationPath);
      await expect(customer.getByTestId("reservation-credits")).toContainText("grid curtailment");
      await expect(customer.getByTestId("reservation-credits")).toContainText("ERCOT <i>ERS</i> grid event");
      await expect(customer.getByTestId("reservation-credited")).toBeVisible();
      // 3 of its 24 unit-hours, at the price it paid.
      expect(sql(`select credited_cents = total_cents * 3 / 24 from reservation where id = ${id}`)).toBe("t");
      await customer.context().close();
      await operator.context().close();
    });
  });
}
