// ESLint (flat config): @eslint/js and typescript-eslint recommended, then the layer boundaries of
// README "Development" as no-restricted-imports. Formatting is Prettier's (eslint-config-prettier
// turns off the rules that would fight it). `npm run lint` runs this with --max-warnings 0.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import globals from "globals";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

// Modules that do I/O. The pure cores below import none of them: they take what they need as
// arguments (a clock, a secret list, a read view) and are tested without a server or a database.
const ioModules = [
  ...["fs", "fs/promises", "net", "http", "https", "http2", "tls", "dgram", "dns", "child_process"].flatMap((m) => [m, `node:${m}`]),
  "axios",
  "pg",
  "better-sqlite3",
  "kysely",
  "express",
  "winston",
];
const pureCores = ["src/security/**/*.ts", "src/recharge/order.ts", "src/subscribe-pro/map-request.ts", "src/orders/amounts.ts", "src/money.ts", "src/outbound/retry-policy.ts"];

// One rule object per boundary; a file in several groups gets all of theirs (see `importRules`).
const boundaries = {
  // SQL only in src/store/: the rest of src/ calls the store's intent functions.
  store: {
    paths: [{ name: "kysely", message: "SQL belongs in src/store/: call a store function instead." }],
    patterns: [
      {
        regex: "(^|/)store/schema(\\.js)?$",
        message: "The schema is the store's own: src/store/ exports what the rest of src/ needs.",
      },
    ],
  },
  // One outbound HTTP client (src/outbound/): timeouts, retries, Retry-After and scrubbing in one place.
  outbound: {
    paths: [{ name: "axios", message: "Outbound HTTP goes through src/outbound/ (timeouts, retries, scrubbing)." }],
    patterns: [],
  },
  // src/ is what ships: it never reaches into the tests, the bench or the stand-ins.
  shipped: {
    paths: [],
    patterns: [
      {
        regex: "^(\\.\\./)+(test|bench|tools)/",
        message: "src/ must not import from test/, bench/ or tools/ (they are not in the package).",
      },
    ],
  },
  pure: {
    paths: ioModules.map((name) => ({ name, message: "A pure core does no I/O: take it as an argument." })),
    patterns: [
      {
        regex: "(^|/)(store|outbound)(/|$)",
        message: "A pure core does no I/O: it does not import the store or the outbound client.",
      },
    ],
  },
};

/** A `no-restricted-imports` entry for the files that keep every boundary in `names`. */
function importRules(...names) {
  const chosen = names.map((n) => boundaries[n]);
  // One entry per module name (axios is both "outbound" and "pure"): the first message wins.
  const paths = [
    ...new Map(
      chosen
        .flatMap((b) => b.paths)
        .reverse()
        .map((p) => [p.name, p]),
    ).values(),
  ];
  return { "no-restricted-imports": ["error", { paths, patterns: chosen.flatMap((b) => b.patterns) }] };
}

export default defineConfig(
  {
    ignores: ["dist/", "node_modules/", "data/", "coverage/"],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // `_`-prefixed names are unused on purpose (a parameter a signature needs, a skipped element).
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
    },
  },
  // The layers. Later blocks override earlier ones for the same rule, so each block lists every
  // boundary its files keep.
  { files: ["src/**/*.ts"], rules: importRules("store", "outbound", "shipped") },
  { files: ["src/store/**/*.ts"], rules: importRules("outbound", "shipped") },
  { files: ["src/outbound/**/*.ts"], rules: importRules("store", "shipped") },
  { files: pureCores, rules: importRules("store", "outbound", "shipped", "pure") },
  prettier,
);
