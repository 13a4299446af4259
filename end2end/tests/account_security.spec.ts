import { expect, test, type Page } from "@playwright/test";
import { sql } from "./db";
import { base32Decode, linkIn, mailTo, totp } from "./security";

const DEMO_PASSWORD = "rigshift-demo-2026";

async function hydrated(page: Page) {
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
}

test("a forgotten password is reset from the sign-in page with the link in the mail", async ({ page }) => {
  // A person of their own, so other tests' demo accounts keep their passwords.
  const email = `reset-${Date.now()}@helixlabs.example`;
  await page.goto("/signup");
  await hydrated(page);
  await page.getByLabel("Organization").fill(`Reset Labs ${Date.now()}`);
  await page.getByLabel("Your name").fill("Rita Reset");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("an old passphrase for reset");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("verify-panel")).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/$/);

  await page.goto("/login");
  await hydrated(page);
  await page.getByTestId("forgot-link").click();
  await expect(page).toHaveURL(/\/forgot$/);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Mail me a link" }).click();
  await expect(page.getByTestId("reset-sent")).toBeVisible();

  // The link arrives through the SMTP listener.
  let link: string | undefined;
  await expect
    .poll(() => {
      link = mailTo(email).map((m) => linkIn(m, "/reset?code=")).find(Boolean);
      return link;
    }, { timeout: 15_000 })
    .toBeTruthy();
  await page.goto(link!);
  await hydrated(page);
  await page.getByLabel(/^New password/).fill("a brand new passphrase 2026");
  await page.getByLabel("The same again").fill("a brand new passphrase 2026");
  await page.getByRole("button", { name: "Set the new password" }).click();
  await expect(page.getByTestId("login-notice")).toContainText("password was changed");

  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("a brand new passphrase 2026");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toHaveText("Rita Reset");

  // The link worked once.
  await page.goto(link!);
  await expect(page.getByTestId("reset-dead")).toBeVisible();
});

test("two-factor authentication is set up on the account page and asked for at sign-in", async ({ page }) => {
  const email = `totp-${Date.now()}@northwind.example`;
  const password = "a passphrase with a second factor";
  await page.goto("/signup");
  await hydrated(page);
  await page.getByLabel("Organization").fill(`Second Factor Co ${Date.now()}`);
  await page.getByLabel("Your name").fill("Tom Totp");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("second-factor")).toBeVisible();
  await hydrated(page);

  await page.getByTestId("begin-2fa").click();
  const secret = base32Decode((await page.getByTestId("2fa-secret").textContent())!.trim());
  expect(secret.length).toBe(20);
  // The recovery codes are shown while it is set up, and not again once it is on.
  await expect(page.getByTestId("pending-recovery-codes").locator("li")).toHaveCount(10);
  await page.getByLabel("The six-digit code it shows").fill(totp(secret));
  await page.getByTestId("confirm-2fa").click();
  await expect(page.getByTestId("second-factor-on")).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Two-factor authentication is on." })).toBeVisible();
  await expect(page.getByTestId("pending-recovery-codes")).toHaveCount(0);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const form = page.getByTestId("login-code-form");
  await expect(form).toBeVisible();
  await form.getByLabel("Code").fill("000000");
  await form.getByRole("button", { name: "Sign in" }).click();
  await expect(form.getByRole("alert")).toContainText("not right");
  // A code of the next step (the one used to turn it on can't be used twice).
  await form.getByLabel("Code").fill(totp(secret, Date.now() + 30_000));
  await form.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("nav-user")).toHaveText("Tom Totp");
  expect(sql(`select totp_enabled_at is not null from app_user where email = '${email}'`)).toBe("t");
});
