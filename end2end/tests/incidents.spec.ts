import { test, expect, Page } from "@playwright/test";
import { demoCustomer, demoOperator, signIn, sql } from "./db";

// Incidents: an operator marks a node down during a running reservation; the customer sees
// the move to a spare; a second incident with no spare credits the hours and offers the
// same capacity at another of the operator's sites; search shows each pool's reliability.
// Each test has an operator of its own with two sites and a GPU model of its own.

/** Two live sites of `operator`, each with a pool of `model` nodes on sale for 60 days. */
function twoSites(operator: string, model: string): { main: string; other: string } {
  const pool = (site: string, nodes: number) =>
    sql(`
      with s as (insert into site (operator_id, name, country, region, grid_region, energy_source,
                                   interconnect_kw, pue, cooling, status)
                 select o.id, '${site}', 'US', 'Texas', 'ERCOT', 'wind', 50000, 1.2, 'air', 'live'
                   from organization o where o.name = '${operator}' returning id),
      p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                       interconnect, node_power_w, price_cents, min_lead_hours)
            select id, 'gpu', 'Pool at ${site}', ${nodes}, '${model}', 8, 80, 'infiniband', 10200, 1000, 0 from s
            returning id, site_id),
      u as (insert into capacity_unit (site_id, pool_id, ordinal, label)
            select site_id, id, n, 'node-' || n from p, generate_series(1, ${nodes}) n)
      insert into availability_window (site_id, pool_id, during)
      select site_id, id, tstzrange(date_trunc('hour', now()) - interval '1 day', date_trunc('hour', now()) + interval '60 days') from p
      returning pool_id`);
  return { main: pool(`${model} main`, 2), other: pool(`${model} other`, 1) };
}

/** One node of `pool` for `customer`, running since two hours ago for a day, charged. */
function runningReservation(pool: string, customer: string): string {
  return sql(`
    with r as (insert into reservation (site_id, pool_id, customer_id, unit_count, during, state, currency,
                                        unit_price_cents, base_cents, discount_cents, fee_cents, total_cents, fee_bp, tier)
               select p.site_id, p.id, o.id, 1,
                      tstzrange(date_trunc('hour', now()) - interval '2 hours', date_trunc('hour', now()) + interval '22 hours'),
                      'confirmed', 'USD', 1000, 192000, 0, 5760, 197760, 300, 'firm'
                 from capacity_pool p, organization o where p.id = ${pool} and o.name = '${customer}'
               returning id, site_id, pool_id, during)
    insert into allocation (site_id, pool_id, unit_id, reservation_id, during)
    select r.site_id, r.pool_id, u.id, r.id, r.during from r join capacity_unit u on u.pool_id = r.pool_id and u.ordinal = 1
    returning reservation_id`);
}

async function recordIncident(ops: Page, pool: string, units: string, cause: string, since: string) {
  await ops.goto(`/operator/pools/${pool}`);
  const form = ops.getByTestId("incident-form");
  await form.getByLabel("Units down").fill(units);
  await form.getByLabel("Cause").fill(cause);
  await form.getByLabel("Down since (UTC)").fill(since);
  await form.getByRole("button", { name: "Record the incident and heal" }).click();
  await expect(ops.getByTestId("incident-recorded")).toBeVisible();
}

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    const mode = js ? "js" : "nojs";

    test("a node down mid-reservation moves it to a spare; with no spare the hours are credited and another site is offered; search shows reliability", async ({ browser }) => {
      const op = demoOperator(`incident-${mode}`);
      const customer = demoCustomer(`incident-${mode}`);
      const model = `RS incident ${mode} ${Date.now() % 1_000_000}`;
      const { main, other } = twoSites(op.organization, model);
      const res = runningReservation(main, customer.organization);
      const since = sql(`select to_char(now() - interval '90 minutes', 'YYYY-MM-DD"T"HH24:MI')`);

      const ops = await signIn(browser, js, op.email);
      const cause = `<b>PSU</b> & "fan" failed`;
      await recordIncident(ops, main, "1", cause, since);
      const row = ops.getByTestId("incident-table").locator("tbody tr").first();
      await expect(row).toContainText(cause);
      await expect(row).toContainText("open");
      expect(sql(`select count(*) from allocation a join capacity_unit u on u.id = a.unit_id
                   where a.reservation_id = ${res} and u.ordinal = 2`)).toBe("1");

      // The customer sees which unit changed and when, the cause as typed, and the credit
      // for the hours before the move.
      const page = await signIn(browser, js, customer.email);
      await page.goto(`/reservations/${res}`);
      const moves = page.getByTestId("incident-moves");
      await expect(moves).toContainText("Moved from unit 1 to unit 2");
      await expect(moves).toContainText(cause);
      await expect(page.getByTestId("reservation-credits")).toContainText("hardware incident");
      await expect(page.getByTestId("reservation-units")).toContainText("Unit 2");

      // Search: the pool with a record shows its score, the new one no history yet.
      await page.goto(`/?kind=gpu&gpu_model=${encodeURIComponent(model)}&hours=24`);
      const hits = page.getByTestId("search-results");
      await expect(hits.locator("li", { hasText: `${model} main` }).getByTestId("hit-reliability")).toHaveText(/^\d+(\.\d+)?%$/);
      await expect(hits.locator("li", { hasText: `${model} other` }).getByTestId("hit-reliability")).toHaveText("no history yet");
      // Asking for 99.9 % or better leaves both out: one fell short, the other has no record.
      await page.goto(`/?kind=gpu&gpu_model=${encodeURIComponent(model)}&hours=24&min_reliability=99.9`);
      await expect(page.getByTestId("no-results")).toBeVisible();

      // The second node fails too: no spare, so the rest is credited and the other site offered.
      await recordIncident(ops, main, "2", "the row's PDU tripped", since);
      await page.goto(`/reservations/${res}`);
      await expect(page.getByTestId("incident-moves")).toContainText("Lost on unit 2 (credited)");
      const offer = page.getByTestId("incident-offer");
      await expect(offer).toContainText(`${model} other`);
      await page.goto("/statement");
      await expect(page.getByTestId("statement-lines")).toContainText("Credit for hours not delivered");
      await expect(page.getByTestId("statement-credits")).not.toHaveText("$0.00");

      await page.goto(`/reservations/${res}`);
      if (js) {
        await page.getByTestId("accept-offer").click();
        await expect(page).toHaveURL(/\/reservations\/\d+\?moved_from_offer=\d+$/);
        await expect(page.getByTestId("reservation-facts")).toContainText(`Pool at ${model} other`);
        expect(sql(`select count(*) from reservation where pool_id = ${other} and state = 'confirmed'`)).toBe("1");
      } else {
        await page.getByTestId("decline-offer").click();
        await expect(page.getByTestId("offer-state")).toContainText("declined");
        expect(sql(`select count(*) from reservation where pool_id = ${other}`)).toBe("0");
      }

      // The operator resolves the first incident; its unit is on sale again from the next hour.
      await ops.goto(`/operator/pools/${main}`);
      await ops.getByTestId("incident-table").locator("tbody tr").last().getByTestId("resolve-incident").click();
      await expect(ops.getByTestId("incident-table").locator("tbody tr").last()).toContainText("resolved");
      await ops.context().close();
      await page.context().close();
    });
  });
}
