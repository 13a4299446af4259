import { test, expect, Page, Browser } from "@playwright/test";
import { demoCustomer, demoOperator, sql } from "./db";

// Forward capacity: an operator sells a hall that is still being built ahead of its
// delivery; a customer finds it in search tagged "forward", is refused a start before the
// delivery with the date, and reserves from the delivery on. Each run has an operator and a
// GPU model of its own.

async function signIn(browser: Browser, js: boolean, email: string): Promise<Page> {
  const page = await (await browser.newContext({ javaScriptEnabled: js })).newPage();
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("rigshift-demo-2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toBeVisible();
  return page;
}

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    const mode = js ? "js" : "nojs";

    test("a hall being built is sold forward from its delivery, refused before it, and found in search", async ({ browser }) => {
      const op = demoOperator(`forward-${mode}`);
      const customer = demoCustomer(`forward-${mode}`);
      const model = `RS forward ${mode} ${Date.now() % 1_000_000}`;
      const pool = sql(`
        with s as (insert into site (operator_id, name, country, region, grid_region, energy_source,
                                     interconnect_kw, pue, cooling, status)
                   select o.id, 'Hall <i>C</i> ${mode}', 'NO', 'Nordland', 'NO4', 'hydro', 50000, 1.1, 'air', 'building'
                     from organization o where o.name = '${op.organization}' returning id),
        p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                         interconnect, node_power_w, price_cents, min_lead_hours)
              select id, 'gpu', 'Forward ${model}', 2, '${model}', 8, 80, 'infiniband', 10200, 1000, 0 from s
              returning id, site_id),
        u as (insert into capacity_unit (site_id, pool_id, ordinal, label)
              select site_id, id, n, 'node-' || n from p, generate_series(1, 2) n)
        insert into availability_window (site_id, pool_id, during)
        select site_id, id, tstzrange(date_trunc('hour', now()), date_trunc('hour', now()) + interval '120 days') from p
        returning pool_id`);
      const at = (days: number) =>
        sql(`select to_char(date_trunc('day', now()) + interval '${days} days', 'YYYY-MM-DD"T"HH24:MI')`);
      const delivery = at(20);

      // Not sold ahead yet: the pool page says so, and a review is refused.
      const buyer = await signIn(browser, js, customer.email);
      await buyer.goto(`/pools/${pool}`);
      await expect(buyer.getByTestId("pool-forward")).toContainText("not sold ahead of delivery");

      // The operator states forward terms on the pool's terms form.
      const ops = await signIn(browser, js, op.email);
      await ops.goto(`/operator/pools/${pool}`);
      const form = ops.getByTestId("terms-form");
      await form.getByLabel("Forward: committed delivery (UTC)").fill(delivery);
      await form.getByLabel("Forward: credit per day late").fill("1.5%");
      await form.getByLabel("Forward: walk-away date (UTC)").fill(at(80));
      await form.getByRole("button", { name: "Save price and terms" }).click();
      await expect(ops.getByTestId("pool-notice")).toContainText("Price and terms saved");
      expect(sql(`select late_credit_bp from capacity_pool where id = ${pool}`)).toBe("150");

      // The customer sees the terms in plain words and finds the pool in a forward search.
      await buyer.goto(`/pools/${pool}`);
      await expect(buyer.getByTestId("pool-forward")).toContainText("1.5% of the contract");
      await buyer.goto(`/?gpu_model=${encodeURIComponent(model)}&hours=24&within_days=60&delivery=forward`);
      await expect(buyer.getByTestId("hit-forward")).toContainText("forward");

      // A start before the delivery is refused with the date; from the delivery it books.
      await buyer.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(at(10))}&hours=24&review=1`);
      await expect(buyer.getByText(`delivered on ${delivery.replace("T", " ")} UTC`)).toBeVisible();
      await expect(buyer.getByTestId("confirm-reserve")).toHaveCount(0);
      await buyer.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(delivery)}&hours=24&review=1`);
      await buyer.getByTestId("confirm-reserve").click();
      await expect(buyer).toHaveURL(/\/reservations\/\d+$/);
      await expect(buyer.getByTestId("reservation-forward")).toContainText("1.5% of the contract");
    });
  });
}
