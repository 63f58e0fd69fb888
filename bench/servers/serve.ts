// What the yardsticks share: Subscribe Pro's example check of Sp-Hmac, and listening as the bench
// expects (PORT, 127.0.0.1, "listening on port N", SIGTERM).
import { createHmac } from "node:crypto";
import type { Express, NextFunction, Request, Response } from "express";

/**
 * Subscribe Pro's Node example's authValidate: the HMAC-SHA256 of JSON.stringify(req.body) with
 * the shared secret, compared with `===` to the `Sp-Hmac` header (403 on a mismatch). Its flaws are
 * the example's and kept on purpose: the signature is checked over re-serialised JSON, not over the
 * bytes received, and `===` is not a constant-time comparison.
 */
export function exampleAuthValidate(secret: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const spHmac = req.get("Sp-Hmac");
    if (!spHmac) {
      res.status(403).json({ Error: "Unauthorized request" });
      return;
    }
    const data = createHmac("sha256", secret).update(JSON.stringify(req.body));
    if (spHmac === data.digest("hex")) next();
    else res.status(403).json({ Error: "Unauthorized request" });
  };
}

/** Listens on PORT (0: any) on 127.0.0.1, says where, and closes on SIGTERM (after `onClose`). */
export function serve(app: Express, onClose: () => void = () => undefined): void {
  const port = Number(process.env["PORT"] ?? "0");
  const server = app.listen(port, "127.0.0.1", () => {
    const address = server.address();
    const actual = typeof address === "object" && address !== null ? address.port : port;
    console.log(`listening on port ${actual}`);
  });
  server.keepAliveTimeout = 65_000;
  process.on("SIGTERM", () =>
    server.close(() => {
      onClose();
      process.exit(0);
    }),
  );
}
