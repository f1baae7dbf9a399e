// Debian's Chromium, driven by playwright-core (never a downloaded browser).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests are skipped here, or false. Under CI the browser is required. */
export const noBrowser = existsSync(CHROMIUM)
  ? false
  : process.env.CI
    ? false
    : `${CHROMIUM} is not installed (apt-get install chromium); CI installs it`;

export function launchChromium (extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...extraArgs,
    ],
  });
}
