// Where the package's own files are. This module sits one level below the package root both
// as source (src/paths.ts, under tsx) and as the build (dist/paths.js), so the same relative
// paths work from either.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A file of the build. Worker threads always run the built JavaScript, even when the code that
 * starts them runs from source under tsx: Node 20 does not carry a loader into worker threads.
 */
export const builtFile = (path: string) => join(ROOT, 'dist', path);

/** The dashboard's static files (HTML, CSS, browser JavaScript): not compiled, served as they are. */
export const dashboardDir = join(ROOT, 'public', 'dashboard');

/** Chart.js's UMD build. It is not in chart.js's exports map: it sits beside the CommonJS entry. */
export const chartJsFile = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
