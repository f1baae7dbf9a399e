// Browser assets shipped inside npm packages, served or inlined by us: nothing comes from the internet.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Chart.js's UMD build. It is not in chart.js's exports map: it sits beside the CommonJS entry. */
export const chartJsFile = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
