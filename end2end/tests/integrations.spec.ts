import { test, expect } from "@playwright/test";
import { createServer, IncomingMessage } from "node:http";
import { AddressInfo } from "node:net";
import { createHmac } from "node:crypto";
import { sql } from "./db";

const PASSWORD = "rigshift-demo-2026";

test("the API reference lists the routes of the OpenAPI document", async ({ page, request }) => {
  const doc = await (await request.get("/api/v1/openapi.json")).json();
  const routes = Object.values(doc.paths).reduce((n: number, item: any) => n + Object.keys(item).length, 0);
  await page.goto("/developers");
  await expect(page.getByRole("heading", { name: "API reference" })).toBeVisible();
  await expect(page.getByTestId("api-reference").locator("article.api-op")).toHaveCount(routes);
  await expect(page.getByTestId("api-reference")).toContainText("/api/v1/reservations/{id}/cancel");
});

test("a webhook registered in the browser receives a signed event and shows its attempt", async ({ page, request }) => {
  // A receiver on this machine (the e2e server allows private webhook addresses).
  const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  try {
    await page.goto("/login?next=/webhooks");
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    await page.getByLabel("Email").fill("ml@helixlabs.example");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/webhooks$/);

    const form = page.getByTestId("webhook-form");
    await form.getByLabel("URL").fill(url);
    await form.getByLabel("reservation.created").check();
    await form.getByRole("button", { name: "Add endpoint" }).click();
    const secret = (await page.getByTestId("new-webhook-secret").textContent())!.trim();
    // A Standard Webhooks secret: `whsec_` and the base64 of 24 random bytes.
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    await page.getByTestId("webhooks-reload").click();
    await expect(page.getByTestId("webhook-table")).toContainText(url);

    // A reservation made through the API with a key of the same organization.
    await page.goto("/account");
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
    const keyForm = page.getByTestId("create-key-form");
    await keyForm.getByLabel("Name").fill("e2e-webhooks");
    await keyForm.getByLabel(/reserve:/).check();
    await keyForm.getByRole("button", { name: "Create key" }).click();
    const key = (await page.getByTestId("new-key-secret").textContent())!.trim();
    const auth = { Authorization: `Bearer ${key}` };
    const pools = await (await request.get("/api/v1/pools?limit=200", { headers: auth })).json();
    const pool = pools.data.find((p: any) => p.kind === "gpu" && p.site_live).pool_id;
    const slot = await (await request.get(`/api/v1/pools/${pool}/slots?units=1&hours=24`, { headers: auth })).json();
    const made = await request.post("/api/v1/reservations", {
      headers: { ...auth, "Idempotency-Key": `e2e-${Date.now()}` },
      data: { pool_id: pool, quantity: { units: 1 }, start: slot.start, end: slot.end },
    });
    expect(made.status()).toBe(201);
    const reservation = await made.json();

    // The worker delivers within seconds; the signature verifies with the secret.
    await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThan(0);
    const got = received[0];
    const event = JSON.parse(got.body);
    expect(event.type).toBe("reservation.created");
    expect(event.data.reservation_id).toBe(reservation.id);
    // Standard Webhooks: base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>",
    // keyed with the base64-decoded secret.
    const id = String(got.headers["webhook-id"]);
    const ts = String(got.headers["webhook-timestamp"]);
    expect(Math.abs(Date.now() / 1000 - Number(ts))).toBeLessThan(120);
    const signingKey = Buffer.from(secret.slice("whsec_".length), "base64");
    const expected = createHmac("sha256", signingKey).update(`${id}.${ts}.${got.body}`).digest("base64");
    expect(String(got.headers["webhook-signature"])).toBe(`v1,${expected}`);

    // The browser lists the delivery with its attempt.
    await page.goto("/webhooks");
    const row = page.getByTestId("delivery-table").locator("tbody tr").first();
    await expect(row).toContainText("reservation.created");
    await expect(row).toContainText("delivered");
    await expect(row).toContainText("HTTP 204");
    expect(sql(`select count(*) from webhook_attempt`)).not.toBe("0");
  } finally {
    server.close();
  }
});
