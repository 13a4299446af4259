import { createHmac } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** RFC 4648 base32 (no padding) to bytes: how the account page shows the TOTP secret. */
export function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${c}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The six-digit TOTP code (RFC 6238, SHA-1, 30 s) an authenticator shows at `at`. */
export function totp(secret: Buffer, at = Date.now()): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const digest = createHmac("sha1", secret).update(counter).digest();
  const offset = digest[19] & 0x0f;
  const bin = (digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return bin.toString().padStart(6, "0");
}

/** Messages the test SMTP listener received for `to`, oldest first, quoted-printable undone. */
export function mailTo(to: string): string[] {
  const dir = process.env.RIGSHIFT_E2E_MAILDIR;
  if (!dir) throw new Error("RIGSHIFT_E2E_MAILDIR is not set; run the tests through .ci/test");
  const inbox = join(dir, "new");
  let files: string[] = [];
  try {
    files = readdirSync(inbox).map((f) => join(inbox, f));
  } catch {
    return [];
  }
  return files
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
    .map((f) => readFileSync(f, "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "="))
    .filter((m) => m.includes(`X-RcptTo: ${to}`));
}

/** The first link in `text` to `path`, such as `/reset?token=`. */
export function linkIn(text: string, path: string): string | undefined {
  const m = text.match(new RegExp(`https?://\\S*${path.replace(/[?]/g, "\\?")}\\S*`));
  return m?.[0];
}
