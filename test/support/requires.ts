/**
 * Tests that need an optional tool (Docker, HAProxy, PostgreSQL's binaries, Prometheus and promtool,
 * kustomize, python3 with numpy, openssl): on a developer's machine without it they are reported as skipped,
 * with the reason and how to install it; in CI (`CI=true`), where `.ci/run` installs every one of them, a
 * missing tool is a failure, so that a broken install can never turn the suite green by skipping.
 *
 * `.ci/run` names in DUST_CI_WITHOUT (space-separated) a tool it tried and could not provide on that machine
 * (a Docker daemon in an unprivileged container); those skip in CI too, and `.ci/run` says so in its output.
 */
import { describe, it, type TestFunction } from 'vitest';

/** Set by CI systems (GitHub Actions, GitLab, Buildkite, ...). */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

const CI_WITHOUT = new Set((process.env.DUST_CI_WITHOUT ?? '').split(/\s+/).filter(Boolean));

export interface Requirement {
  /** The tool, as named in messages and in DUST_CI_WITHOUT. */
  readonly name: string;
  readonly available: boolean;
  /** Why it is missing and how to install it. */
  readonly reason: string;
  /** A describe block that runs with the tool, is skipped with the reason without it, and fails in CI without it. */
  describe(title: string, body: () => void): void;
  /** The same for one test. */
  it(title: string, body: TestFunction, timeoutMs?: number): void;
  /**
   * For a test that still runs without the tool but checks less: throws in CI, else warns with `what` is left
   * unchecked.
   */
  warnUnlessCi(what: string): void;
}

/** Whether a missing tool fails (CI, unless `.ci/run` said it could not provide it) rather than skips. */
function mustHave(name: string): boolean {
  return IN_CI && !CI_WITHOUT.has(name);
}

function missingInCi(name: string, reason: string): Error {
  return new Error(`${name} is missing, and CI=true: .ci/run installs it, so the tests that need it must run (${reason})`);
}

/**
 * `available` and `reason` may be functions, run once on first use, for a probe that costs a process start
 * (test/support/tools.ts holds probes that only some test files use).
 */
export function requireTool(name: string, available: boolean | (() => boolean), reason: string | (() => string)): Requirement {
  let probed: { available: boolean; reason: string } | undefined;
  const probe = () =>
    (probed ??= {
      available: typeof available === 'function' ? available() : available,
      reason: typeof reason === 'function' ? reason() : reason,
    });
  return {
    name,
    get available() {
      return probe().available;
    },
    get reason() {
      return probe().reason;
    },
    describe(title, body) {
      const { available, reason } = probe();
      if (available) describe(title, body);
      else if (mustHave(name))
        describe(title, () => {
          it(`needs ${name}`, () => {
            throw missingInCi(name, reason);
          });
        });
      else {
        // The default reporter does not print why a test was skipped.
        console.warn(`skipped: ${title}: ${reason}`);
        describe.skip(`${title} (skipped: ${reason})`, body);
      }
    },
    it(title, body, timeoutMs) {
      const { available, reason } = probe();
      if (available) it(title, body, timeoutMs);
      else if (mustHave(name))
        it(`${title} (needs ${name})`, () => {
          throw missingInCi(name, reason);
        });
      else {
        console.warn(`skipped: ${title}: ${reason}`);
        it.skip(`${title} (skipped: ${reason})`, body);
      }
    },
    warnUnlessCi(what) {
      const { available, reason } = probe();
      if (available) return;
      if (mustHave(name)) throw missingInCi(name, reason);
      console.warn(`${what} not checked: ${reason}`);
    },
  };
}
