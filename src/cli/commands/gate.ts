/** `sandstack gate`: the Startability Gate on the running instance, or on a fresh throwaway one. */
import { gateCheck, gateFresh } from '../../gate/run.js';
import { gateText } from '../output.js';
import type { Action } from '../register.js';

export const gate: Action = async (ctx, out, cmd) => {
  const opts = cmd.opts<{ fresh?: boolean; build: boolean; from?: string }>();
  const { report, error } = opts.fresh ? await gateFresh(ctx, { build: opts.build, from: opts.from }) : await gateCheck(ctx);
  if (error !== undefined) {
    const code = out.error(error, { printJson: false });
    out.result(report, () => gateText(report));
    return report.passed ? 0 : code;
  }
  out.result(report, () => gateText(report));
  return report.passed ? 0 : 1;
};
