import { test, expect, Page, Browser } from "@playwright/test";
import { demoCustomer, signIn, sql } from "./db";

// The market's tools: holds at a binding price, resale of reserved hours, standing orders.
// Each test lists its own one-node pool under a GPU model of its own, so what it searches,
// holds and sells is its alone.

/** A new demo customer, signed in, in a context with JavaScript on or off. */
function signedIn(browser: Browser, js: boolean, tag: string): Promise<Page> {
  return signIn(browser, js, demoCustomer(tag).email);
}

/** A one-node pool at $12.00 per GPU-hour on a live demo site, on sale for a year. */
function onePool(tag: string): { pool: string; model: string } {
  const model = `RS ${tag} ${Date.now() % 1_000_000}`;
  const pool = sql(`
    with site as (select id from site where status = 'live' order by id limit 1),
    p as (insert into capacity_pool (site_id, kind, name, unit_count, gpu_model, gpus_per_node, gpu_memory_gb,
                                     interconnect, node_power_w, price_cents, min_lead_hours)
          select id, 'gpu', 'Pool ${model}', 1, '${model}', 8, 80, 'infiniband', 10200, 1200, 0
            from site returning id, site_id),
    u as (insert into capacity_unit (site_id, pool_id, ordinal, label) select site_id, id, 1, 'node-1' from p)
    insert into availability_window (site_id, pool_id, during)
    select site_id, id, tstzrange(date_trunc('hour', now()), date_trunc('hour', now()) + interval '365 days') from p
    returning pool_id`);
  return { pool, model };
}

/** `YYYY-MM-DDTHH:MM` (UTC) of the whole hour `hours` from now. */
function hourFromNow(hours: number): string {
  return sql(`select to_char(date_trunc('hour', now()) + interval '${hours} hours', 'YYYY-MM-DD"T"HH24:MI')`);
}

/** Reviews and reserves one node of `pool` from `start` for `hours` hours; returns the reservation's path. */
async function reserve(page: Page, pool: string, start: string, hours: number): Promise<string> {
  await page.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=${hours}&review=1`);
  await page.getByTestId("confirm-reserve").click();
  await expect(page).toHaveURL(/\/reservations\/\d+$/);
  return new URL(page.url()).pathname;
}

for (const js of [true, false]) {
  test.describe(js ? "hydrated" : "without JavaScript", () => {
    const mode = js ? "js" : "nojs";

    test("a customer holds the quoted price, sees it held and confirms it at that total", async ({ browser }) => {
      const { pool } = onePool(`hold-${mode}`);
      const page = await signedIn(browser, js, `hold-${mode}`);
      const start = hourFromNow(30);
      await page.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&review=1`);
      const total = (await page.getByTestId("review-total").textContent())!.trim();
      await page.getByTestId("hold-capacity").click();
      await expect(page).toHaveURL(/\/reservations\/\d+$/);
      const id = new URL(page.url()).pathname.split("/").pop();
      await expect(page.getByTestId("hold-panel")).toContainText("Held for you");
      await expect(page.getByTestId("hold-panel")).toContainText(total);
      if (js) await expect(page.getByTestId("countdown")).toHaveText(/\(1[45]:\d\d left\)/);
      expect(sql(`select state, held_until > now() + interval '14 minutes' from reservation where id = ${id}`)).toBe("held|t");

      // Someone else finds the node taken while it is held.
      const other = await signedIn(browser, js, `hold-other-${mode}`);
      await other.goto(`/pools/${pool}?units=1&start=${encodeURIComponent(start)}&hours=24&review=1`);
      await expect(other.getByTestId("review")).toContainText("Not enough units are free");
      await other.context().close();

      await page.getByTestId("confirm-hold").click();
      await expect(page.getByTestId("reservation-facts")).toContainText("confirmed");
      await expect(page.getByTestId("reservation-total")).toHaveText(total);
      expect(sql(`select state from reservation where id = ${id}`)).toBe("confirmed");
      await page.context().close();
    });

    test("a customer lists the last 48 hours of a reservation, another finds it in search and buys it, both statements show the money", async ({ browser }) => {
      const { pool, model } = onePool(`resale-${mode}`);
      const seller = await signedIn(browser, js, `seller-${mode}`);
      const path = await reserve(seller, pool, hourFromNow(24), 96);
      await seller.getByTestId("resale-hours").fill("48");
      await seller.getByTestId("resale-price").fill("12.00");
      await seller.getByTestId("list-resale").click();
      await expect(seller.getByTestId("resale-listings")).toContainText("open");

      const buyer = await signedIn(browser, js, `buyer-${mode}`);
      await buyer.goto(`/?gpu_model=${encodeURIComponent(model)}&gpus=8&hours=48`);
      const found = buyer.getByTestId("search-resale");
      await expect(found).toContainText(`Pool ${model}`);
      await expect(found).toContainText("$576.00");
      await found.getByRole("link", { name: "View and buy" }).click();
      await expect(buyer.getByTestId("pool-resale")).toContainText("A resale is final");
      await buyer.getByTestId("buy-resale").click();
      await expect(buyer).toHaveURL(/\/reservations\/\d+$/);
      await expect(buyer.getByTestId("resale-terms")).toContainText("Bought on resale");
      await expect(buyer.getByTestId("reservation-total")).toHaveText("$576.00");

      // 48 h × $12.00 = $576.00; the seller is credited that less the 3% fee ($17.28).
      await buyer.goto("/statement");
      await expect(buyer.getByTestId("statement-lines")).toContainText("Bought on resale");
      await expect(buyer.getByTestId("statement-lines")).toContainText("$576.00");
      await seller.goto("/statement");
      await expect(seller.getByTestId("statement-resale")).toHaveText("$558.72");
      await seller.goto(path);
      await expect(seller.getByTestId("listing-state")).toHaveText("sold");
      await expect(seller.getByTestId("resale-proceeds")).toHaveText("$558.72");
      await seller.context().close();
      await buyer.context().close();
    });

    test("a standing order fills when a third customer cancels", async ({ browser }) => {
      const { pool, model } = onePool(`order-${mode}`);
      const start = hourFromNow(48);
      const third = await signedIn(browser, js, `third-${mode}`);
      const taken = await reserve(third, pool, start, 24);

      // Nothing fits, so the customer leaves the search as an order.
      const customer = await signedIn(browser, js, `waiting-${mode}`);
      await customer.goto(`/?gpu_model=${encodeURIComponent(model)}&gpus=8&hours=24&start=${encodeURIComponent(start)}`);
      await customer.getByTestId("leave-order").click();
      await expect(customer).toHaveURL(/\/orders\?/);
      const form = customer.getByTestId("order-form");
      await expect(form.getByLabel("GPU model")).toHaveValue(model);
      await form.getByLabel("Latest start (UTC)").fill(start);
      await form.getByRole("button", { name: "Leave the order" }).click();
      await expect(customer.getByTestId("orders")).toContainText(`8 GPUs of ${model} for 24 h`);
      await expect(customer.getByTestId("order-state")).toHaveText("open");

      await third.goto(taken);
      await third.getByTestId("confirm-cancel").click();
      await expect(third.getByTestId("reservation-facts")).toContainText("cancelled");

      // Every server process looks for capacity every few seconds.
      await expect(async () => {
        await customer.goto("/orders");
        await expect(customer.getByTestId("order-state")).toHaveText("filled", { timeout: 1000 });
      }).toPass({ timeout: 30_000 });
      await customer.getByTestId("order-reservation").click();
      await expect(customer.getByTestId("reservation-facts")).toContainText("confirmed");
      await third.context().close();
      await customer.context().close();
    });
  });
}
