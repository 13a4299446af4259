import { test, expect, Page } from "@playwright/test";
import { listExtraGpuPool, sql } from "./db";

function gpuCount(text: string | null): number {
  return Number((text ?? "").replace(/[^0-9]/g, ""));
}

async function dbGpuCount(): Promise<number> {
  return Number(
    sql(`select coalesce(sum(p.unit_count * p.gpus_per_node), 0)
         from capacity_pool p join site s on s.id = p.site_id
         where p.listed and p.kind = 'gpu' and s.status = 'live'`),
  );
}

function collectConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

test.describe("with JavaScript", () => {
  test("the market hydrates and the live count re-reads PostgreSQL", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    await page.goto("/");
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    await expect(page).toHaveTitle("Market · Rigshift");

    const shown = page.getByTestId("live-gpus");
    const before = gpuCount(await shown.textContent());
    expect(before).toBe(await dbGpuCount());
    expect(before).toBeGreaterThan(1000); // the demo market is loaded

    const rows = page.getByTestId("pool-table").locator("tbody tr");
    expect(await rows.count()).toBeGreaterThanOrEqual(15);

    const added = listExtraGpuPool("E2E hydrated pool");
    await page.getByTestId("refresh-live").click();
    await expect(shown).toHaveText((before + added).toLocaleString("en-US"));
    await expect(page.getByText("Counted just now.")).toBeVisible();
    // The page was not reloaded: the action ran through the hydrated app.
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    expect(errors).toEqual([]);
  });

  test("an unknown address shows the styled 404 page with status 404", async ({ page }) => {
    const response = await page.goto("/no/such/page");
    expect(response?.status()).toBe(404);
    await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
    await page.getByRole("link", { name: "Back to the market" }).click();
    await expect(page.getByRole("heading", { name: /Firm AI capacity/ })).toBeVisible();
  });
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the server-rendered market is complete and the refresh form works", async ({ page }) => {
    await page.goto("/");
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
    const shown = page.getByTestId("live-gpus");
    const before = gpuCount(await shown.textContent());
    expect(before).toBe(await dbGpuCount());
    await expect(page.getByTestId("pool-table")).toContainText("Rockdale North");
    await expect(page.getByTestId("pool-table")).toContainText("ERCOT");

    const added = listExtraGpuPool("E2E no-JS pool");
    // A plain form post to the server function, then a redirect back to the page.
    await page.getByTestId("refresh-live").click();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/");
    await expect(shown).toHaveText((before + added).toLocaleString("en-US"));
  });
});

test("phone width: no sideways scrolling on the market", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/");
  await expect(page.getByTestId("pool-table")).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});
