import { test, expect } from "@playwright/test";
import { demoCustomer, demoOperator, signIn, sql } from "./db";

// Forward capacity: an operator sells a hall that is still being built ahead of its
// delivery; a customer finds it in search tagged "forward", is refused a start before the
// delivery with the date, and reserves from the delivery on; the operator's bridge chart then
// shows mining until the delivery and the contracted AI load after it; a late hall moves the
// delivery and the contract with it; past the walk-away
// date, undelivered, the customer walks away with a full refund. Each run has an operator
// and a GPU model of its own.

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    const mode = js ? "js" : "nojs";

    test("a hall being built is sold forward from its delivery, refused before it, found in search, and charted on the bridge", async ({ browser }) => {
      const op = demoOperator(`forward-${mode}`);
      const customer = demoCustomer(`forward-${mode}`);
      const model = `RS forward ${mode} ${Date.now() % 1_000_000}`;
      const pool = sql(`
        with s as (insert into site (operator_id, name, country, region, grid_region, energy_source,
                                     interconnect_kw, pue, cooling, status, hashrate_th,
                                     fleet_efficiency_j_th, hashprice_usd_cents_per_ph_day)
                   select o.id, 'Hall <i>C</i> ${mode}', 'NO', 'Nordland', 'NO4', 'hydro', 50000, 1.1, 'air', 'building',
                          500000, 22, 4800
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

      // The operator's bridge: mining (0.5 EH/s at 22 J/TH, 11 MW) until the delivery, then
      // the node just sold (10.2 kW × PUE 1.1 = 11 kW) against the two listed (22 kW).
      const site = sql(`select site_id from capacity_pool where id = ${pool}`);
      await ops.goto(`/operator/sites/${site}`);
      const bridge = ops.getByTestId("bridge");
      await expect(bridge.getByTestId("bridge-delivery")).toBeVisible();
      await expect(bridge.getByTestId("bridge-forward-revenue")).toContainText("$");
      await expect(bridge.getByTestId("bridge-mining-revenue")).toContainText("$");
      const chart = bridge.getByTestId("bridge-chart");
      await expect(chart).toBeVisible();
      const mining = chart.getByTestId("bridge-mining");
      await expect(mining).toHaveCount(1);
      const right = Number(await mining.getAttribute("x")) + Number(await mining.getAttribute("width"));
      const deliveryX = Number(await chart.getByTestId("bridge-delivery-line").getAttribute("x1"));
      expect(Math.abs(right - deliveryX)).toBeLessThan(0.2);
      expect(await chart.getByTestId("bridge-ai").getAttribute("d")).toContain("L");
      const periods = bridge.getByTestId("bridge-periods");
      const deliveryRow = periods.locator("tr", { hasText: delivery.replace("T", " ") });
      await expect(deliveryRow).toContainText("11 kW");
      await expect(deliveryRow).toContainText("22 kW");
      await expect(periods.locator("tbody tr").first()).toContainText("11.00 MW");
      // The economics page shows the same bridge under the site's name, as text.
      await ops.goto("/operator/economics");
      const there = ops.getByTestId("bridge").filter({ hasText: `Hall <i>C</i> ${mode}` });
      await expect(there.getByRole("heading")).toHaveText(`The bridge at Hall <i>C</i> ${mode}`);
      await expect(there.getByTestId("bridge-chart")).toBeVisible();

      // The hall is two days late: the operator moves the delivery on the pool's terms form,
      // and the contract it passes moves whole, two days later, its customer told.
      const reservation = sql(`select id from reservation where pool_id = ${pool}`);
      await ops.goto(`/operator/pools/${pool}`);
      await ops.getByTestId("terms-form").getByLabel("Forward: committed delivery (UTC)").fill(at(22));
      await ops.getByTestId("terms-form").getByRole("button", { name: "Save price and terms" }).click();
      await expect(ops.getByTestId("pool-notice")).toContainText("shifted 1 reservation(s)");
      expect(sql(`select to_char(lower(during) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI') from reservation where id = ${reservation}`)).toBe(at(22));
      expect(sql(`select count(*) from event_outbox where kind = 'reservation.delayed' and payload->>'reservation_id' = '${reservation}'`)).toBe("1");

      // Past the walk-away date with the hall still not delivered (the contract's dates are
      // moved into the past in the database, its triggers off for that one session): the
      // customer walks away from the reservation page, and everything comes back.
      const past = (hours: number) => `date_trunc('hour', now()) - interval '${hours} hours'`;
      sql(`set session_replication_role = replica;
           update allocation set during = tstzrange(${past(48)}, ${past(24)}) where reservation_id = ${reservation};
           update reservation set forward_delivery_at = ${past(72)}, forward_walk_away_at = ${past(1)},
                                  during = tstzrange(${past(48)}, ${past(24)})
            where id = ${reservation}`);
      await buyer.goto(`/reservations/${reservation}`);
      const walk = buyer.getByTestId("walk-away");
      await expect(walk).toContainText("not delivered by the walk-away date");
      await walk.getByTestId("walk-away-cancel").click();
      await expect.poll(() => sql(`select state from reservation where id = ${reservation}`)).toBe("cancelled");
      expect(sql(`select refund_cents + credited_cents = total_cents from reservation where id = ${reservation}`)).toBe("t");
      // The form brings the buyer back to the reservation's page, which now says so.
      await expect(buyer).toHaveURL(new RegExp(`/reservations/${reservation}\\?form_done=`));
      await expect(buyer.getByTestId("reservation-facts")).toContainText("cancelled");
      await expect(buyer.getByTestId("walk-away")).toHaveCount(0);
    });
  });
}
